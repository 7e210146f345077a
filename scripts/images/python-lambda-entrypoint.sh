#!/bin/sh
# /lambda-entrypoint.sh of rotcheck/python-lambda:3.11 (written for rotcheck; modelled on the
# entrypoint of AWS's Lambda Python base images, without the Runtime Interface Emulator).
#
#   ENTRYPOINT ["/lambda-entrypoint.sh"]  CMD ["lambda_function.lambda_handler"]
#
# Takes exactly one argument, the handler (module.function, module relative to
# $LAMBDA_TASK_ROOT), exports it as _HANDLER, changes to $LAMBDA_TASK_ROOT (default /var/task;
# awslambdaric imports the handler from its working directory) and replaces itself with
# `python -m awslambdaric <handler>`, which polls the Lambda Runtime API at
# $AWS_LAMBDA_RUNTIME_API (host:port) for invocations until it is killed.
# AWS's images start their emulator when AWS_LAMBDA_RUNTIME_API is unset; this one has none
# and exits 1 with a message instead. A wrong number of arguments exits 142, like AWS's.
if [ "$#" -ne 1 ]; then
	echo "lambda-entrypoint.sh: error: expected exactly one argument, the handler (module.function), got $#" >&2
	exit 142
fi
if [ -z "${AWS_LAMBDA_RUNTIME_API:-}" ]; then
	echo "lambda-entrypoint.sh: error: AWS_LAMBDA_RUNTIME_API is not set; this image has no Runtime Interface Emulator: run it with -e AWS_LAMBDA_RUNTIME_API=<host>:<port> of a Lambda Runtime API (rotcheck hosts one)" >&2
	exit 1
fi
export _HANDLER="$1"
export LAMBDA_TASK_ROOT="${LAMBDA_TASK_ROOT:-/var/task}"
cd "$LAMBDA_TASK_ROOT" || {
	echo "lambda-entrypoint.sh: error: cannot change to LAMBDA_TASK_ROOT=$LAMBDA_TASK_ROOT" >&2
	exit 1
}
exec /var/lang/bin/python -m awslambdaric "$1"
