//! `image`: a Lambda container image, which is what many teams deploy. rotcheck starts it with
//! testcontainers and `AWS_LAMBDA_RUNTIME_API` pointing at its own Runtime API on the Docker
//! bridge, so the image's runtime client polls rotcheck (AWS's base images' entrypoint does
//! exactly this when the variable is set). The emulator and the database must be reachable
//! from the container too: the caller passes endpoints on the bridge address
//! ([`bridge_gateway`]).
//!
//! A container is one warm instance; killing it kills its init process (and so everything in
//! it) synchronously, through the host pid.

use super::logs::LogSink;
use super::runtime_api::{Instance, Launcher};
use super::BoxFuture;
use crate::database::docker::{HOST_LABEL, OWNER_LABEL};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use testcontainers::core::logs::LogFrame;
use testcontainers::{ContainerAsync, GenericImage, ImageExt, runners::AsyncRunner};

/// The address of the default Docker bridge on the host (e.g. 172.17.0.1): where containers
/// reach services rotcheck runs. `$ROTCHECK_DOCKER_BRIDGE_IP` overrides it; else the
/// network's gateway, or (some engines report none) the first host address of its subnet.
pub async fn bridge_gateway() -> Option<IpAddr> {
    if let Some(ip) = std::env::var("ROTCHECK_DOCKER_BRIDGE_IP").ok().and_then(|s| s.parse().ok()) {
        return Some(ip);
    }
    let docker = bollard::Docker::connect_with_defaults().ok()?;
    let net = tokio::time::timeout(Duration::from_secs(5), docker.inspect_network("bridge", None::<bollard::query_parameters::InspectNetworkOptions>))
        .await
        .ok()?
        .ok()?;
    let configs = net.ipam?.config?;
    if let Some(gw) = configs.iter().find_map(|c| c.gateway.as_ref()?.parse().ok()) {
        return Some(gw);
    }
    configs.iter().find_map(|c| first_host(c.subnet.as_deref()?))
}

/// `172.17.0.0/16` -> `172.17.0.1` (Docker gives the bridge the first address).
fn first_host(subnet: &str) -> Option<IpAddr> {
    let (net, _) = subnet.split_once('/')?;
    let v4: std::net::Ipv4Addr = net.parse().ok()?;
    Some(IpAddr::V4(std::net::Ipv4Addr::from(u32::from(v4) + 1)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bridge_is_the_first_host_of_its_subnet() {
        assert_eq!(super::first_host("172.17.0.0/16"), Some("172.17.0.1".parse().unwrap()));
        assert_eq!(super::first_host("nonsense"), None);
    }
}

/// Starts containers of a Lambda image.
pub struct ImageLauncher {
    image: String,
    handler: String,
    bridge: IpAddr,
}

impl ImageLauncher {
    /// Containers of `image` (`name:tag`) running `handler`, with the Runtime API on `bridge`.
    pub fn new(image: &str, handler: &str, bridge: IpAddr) -> ImageLauncher {
        ImageLauncher { image: image.into(), handler: handler.into(), bridge }
    }
}

impl Launcher for ImageLauncher {
    fn describe(&self) -> String {
        format!("the image {}", self.image)
    }

    fn api_bind(&self) -> IpAddr {
        self.bridge
    }

    fn task_root(&self) -> String {
        "/var/task".into()
    }

    fn launch<'a>(&'a self, env: Vec<(String, String)>, sink: Arc<LogSink>) -> BoxFuture<'a, std::io::Result<Box<dyn Instance>>> {
        Box::pin(async move {
            let (name, tag) = match self.image.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
                Some((n, t)) => (n.to_string(), t.to_string()),
                None => (self.image.clone(), "latest".to_string()),
            };
            let mut req = GenericImage::new(name, tag)
                .with_cmd([self.handler.clone()])
                .with_label(OWNER_LABEL, std::process::id().to_string())
                .with_label(HOST_LABEL, std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim())
                .with_log_consumer(move |frame: &LogFrame| match frame {
                    LogFrame::StdOut(b) | LogFrame::StdErr(b) => sink.append(b),
                });
            for (k, v) in env {
                // The image knows where its code is.
                if k != "LAMBDA_TASK_ROOT" {
                    req = req.with_env_var(k, v);
                }
            }
            let container = req.start().await.map_err(|e| std::io::Error::other(e.to_string()))?;
            let docker = bollard::Docker::connect_with_defaults().map_err(|e| std::io::Error::other(e.to_string()))?;
            let info = docker
                .inspect_container(container.id(), None::<bollard::query_parameters::InspectContainerOptions>)
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let pid = info.state.and_then(|s| s.pid).unwrap_or(0) as i32;
            if pid <= 0 {
                return Err(std::io::Error::other("the container has no running process"));
            }
            Ok(Box::new(ContainerInstance { container: Some(container), pid }) as Box<dyn Instance>)
        })
    }
}

struct ContainerInstance {
    container: Option<ContainerAsync<GenericImage>>,
    /// The host pid of the container's init process.
    pid: i32,
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the pid exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

impl Instance for ContainerInstance {
    fn killer(&self) -> Box<dyn FnOnce() + Send> {
        let pid = self.pid;
        // SAFETY: SIGKILL to the container's init; the kernel then kills its whole pid namespace.
        Box::new(move || unsafe {
            libc::kill(pid, libc::SIGKILL);
        })
    }

    fn is_running(&mut self) -> bool {
        self.container.is_some() && alive(self.pid)
    }

    fn wait(&mut self) -> BoxFuture<'_, String> {
        Box::pin(async move {
            while alive(self.pid) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            "the container exited".to_string()
        })
    }

    fn kill(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            (self.killer())();
            if let Some(c) = self.container.take() {
                let _ = c.rm().await;
            }
        })
    }
}
