//! The errors of the Secrets Manager API, as `__type` names and messages.
//!
//! Message texts follow `spec/rotation-contract.md` section 3. Where the spec marks a text
//! UNCONFIRMED, the constructor says so; the type is what callers branch on.

use serde::Serialize;
use std::fmt;

/// The `__type` of an error response (spec section 3.9, plus the protocol-level errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[allow(missing_docs)]
pub enum ErrorKind {
    ResourceNotFoundException,
    InvalidParameterException,
    InvalidRequestException,
    ResourceExistsException,
    LimitExceededException,
    InvalidNextTokenException,
    EncryptionFailure,
    DecryptionFailure,
    InternalServiceError,
    ThrottlingException,
    AccessDeniedException,
    /// The body is not JSON, or a member has the wrong JSON type.
    SerializationException,
    /// `X-Amz-Target` names no operation of the service.
    UnknownOperationException,
    /// Signature errors (verified by the emulator when signature checking is on).
    IncompleteSignature,
    InvalidSignatureException,
    UnrecognizedClientException,
}

impl ErrorKind {
    /// Every kind, for generators and tests.
    pub const ALL: [ErrorKind; 16] = [
        ErrorKind::ResourceNotFoundException,
        ErrorKind::InvalidParameterException,
        ErrorKind::InvalidRequestException,
        ErrorKind::ResourceExistsException,
        ErrorKind::LimitExceededException,
        ErrorKind::InvalidNextTokenException,
        ErrorKind::EncryptionFailure,
        ErrorKind::DecryptionFailure,
        ErrorKind::InternalServiceError,
        ErrorKind::ThrottlingException,
        ErrorKind::AccessDeniedException,
        ErrorKind::SerializationException,
        ErrorKind::UnknownOperationException,
        ErrorKind::IncompleteSignature,
        ErrorKind::InvalidSignatureException,
        ErrorKind::UnrecognizedClientException,
    ];

    /// The `__type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::ResourceNotFoundException => "ResourceNotFoundException",
            ErrorKind::InvalidParameterException => "InvalidParameterException",
            ErrorKind::InvalidRequestException => "InvalidRequestException",
            ErrorKind::ResourceExistsException => "ResourceExistsException",
            ErrorKind::LimitExceededException => "LimitExceededException",
            ErrorKind::InvalidNextTokenException => "InvalidNextTokenException",
            ErrorKind::EncryptionFailure => "EncryptionFailure",
            ErrorKind::DecryptionFailure => "DecryptionFailure",
            ErrorKind::InternalServiceError => "InternalServiceError",
            ErrorKind::ThrottlingException => "ThrottlingException",
            ErrorKind::AccessDeniedException => "AccessDeniedException",
            ErrorKind::SerializationException => "SerializationException",
            ErrorKind::UnknownOperationException => "UnknownOperationException",
            ErrorKind::IncompleteSignature => "IncompleteSignature",
            ErrorKind::InvalidSignatureException => "InvalidSignatureException",
            ErrorKind::UnrecognizedClientException => "UnrecognizedClientException",
        }
    }

    /// Parses a `__type` string (the bare shape name).
    pub fn parse(s: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The HTTP status the emulator answers with.
    ///
    /// `InternalServiceError` is a fault in the API model; the AWS docs contradict each other on
    /// 400 vs 500 (UNCONFIRMED), and a fault normally maps to 500, so 500 it is. Everything else
    /// is a client error, 400 (ResourceNotFoundException is 400 on AWS; moto's 404 is one of
    /// the differences in spec section 6).
    ///
    /// The signature errors are 400 too. AWS's JSON-protocol services answer them with 400 (user
    /// reports: UnrecognizedClientException from AWSSecretsManager with "Status Code: 400",
    /// spring-attic/spring-cloud-aws#492; InvalidSignatureException "status code: 400" from ECS,
    /// teralytics/prometheus-ecs-discovery#7), and CommonErrors lists IncompleteSignature as
    /// 400; the 403s users see come from REST services such as Lambda. Clients branch on
    /// `__type`, not on the status. boto3 retries none of the three; the Rust SDK retries
    /// InvalidSignatureException only when the response's `Date` is minutes off its clock
    /// (clock-skew correction), and the emulator's `Date` is the wall clock.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::InternalServiceError => 500,
            _ => 400,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answer of the API: what the caller sees as `__type` and `Message`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ApiError {
    /// The `__type`.
    pub kind: ErrorKind,
    /// The `Message`.
    pub message: String,
}

impl ApiError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError { kind, message: message.into() }
    }

    pub(crate) fn invalid_parameter(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::InvalidParameterException, message)
    }

    pub(crate) fn invalid_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::InvalidRequestException, message)
    }

    /// Unknown secret (spec 3.2, the text seen in user reports of real AWS errors).
    pub(crate) fn secret_not_found() -> ApiError {
        ApiError::new(
            ErrorKind::ResourceNotFoundException,
            "Secrets Manager can't find the specified secret.",
        )
    }

    /// No version carries the label, or the version that carries it has no value (spec 3.2).
    pub(crate) fn no_value_for_stage(stage: &str) -> ApiError {
        ApiError::new(
            ErrorKind::ResourceNotFoundException,
            format!("Secrets Manager can't find the specified secret value for staging label: {stage}"),
        )
    }

    /// Unknown VersionId, or a VersionId-only read of a version without a value.
    /// The text is moto's; AWS's wording is UNCONFIRMED (spec 3.2).
    pub(crate) fn no_value_for_version(version_id: &str) -> ApiError {
        ApiError::new(
            ErrorKind::ResourceNotFoundException,
            format!("Secrets Manager can't find the specified secret value for VersionId: {version_id}"),
        )
    }

    /// The secret is scheduled for deletion (spec 3.2/3.3: InvalidRequestException; the
    /// wording is UNCONFIRMED, this is the text AWS users report).
    pub(crate) fn marked_for_deletion() -> ApiError {
        ApiError::invalid_request(
            "You can't perform this operation on the secret because it was marked for deletion.",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_name() {
        for k in ErrorKind::ALL {
            assert_eq!(ErrorKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(ErrorKind::parse("NoSuchThing"), None);
    }

    #[test]
    fn only_the_fault_is_a_server_error() {
        for k in ErrorKind::ALL {
            let server = k.http_status() >= 500;
            assert_eq!(server, k == ErrorKind::InternalServiceError, "{k}");
        }
    }
}
