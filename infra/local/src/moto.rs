//! Starting and stopping moto server, the AWS emulator (DynamoDB, SQS, Secrets Manager) that
//! the local stack and the integration tests talk to over the wire.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// Why moto could not be started.
#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error("moto_server not found at {0}; run `make tools` (infra/scripts/install-tools.sh) first")]
    NotInstalled(String),
    #[error("could not start moto_server: {0}")]
    Spawn(std::io::Error),
    #[error("moto_server did not become ready on {0}")]
    NotReady(String),
}

/// A moto server this process started; killed when dropped.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    endpoint: String,
}

impl MotoServer {
    /// The `moto_server` executable: `$VIGIL_MOTO_SERVER`, else `.tools/bin/moto_server`.
    #[must_use]
    pub fn executable() -> PathBuf {
        std::env::var_os("VIGIL_MOTO_SERVER").map_or_else(|| crate::repo_root().join(".tools/bin/moto_server"), PathBuf::from)
    }

    /// The command that starts moto: `infra/scripts/moto_server.py` (moto with DynamoDB
    /// requests serialised, because moto's cancelled transactions undo concurrent writes)
    /// under the tools venv's Python, unless `$VIGIL_MOTO_SERVER` names another executable.
    fn command(port: u16) -> Command {
        let port = port.to_string();
        if let Some(custom) = std::env::var_os("VIGIL_MOTO_SERVER") {
            let mut command = Command::new(custom);
            command.args(["-H", "127.0.0.1", "-p", &port]);
            return command;
        }
        let root = crate::repo_root();
        let mut command = Command::new(root.join(".tools/bin/python"));
        command.arg(root.join("infra/scripts/moto_server.py")).args(["-H", "127.0.0.1", "-p", &port]);
        command
    }

    /// Starts moto on a free loopback port and waits until it answers.
    ///
    /// # Errors
    /// When moto is not installed, cannot start or does not answer within 30 s.
    pub async fn start() -> Result<Self, MotoError> {
        let executable = Self::executable();
        if !executable.exists() {
            return Err(MotoError::NotInstalled(executable.display().to_string()));
        }
        let port = free_port().map_err(MotoError::Spawn)?;
        let child = Self::command(port).stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true).spawn().map_err(MotoError::Spawn)?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let server = Self { child, endpoint };
        wait_ready(&server.endpoint).await?;
        Ok(server)
    }

    /// `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Waits until a moto server at `endpoint` answers.
///
/// # Errors
/// [`MotoError::NotReady`] after 30 s.
pub async fn wait_ready(endpoint: &str) -> Result<(), MotoError> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if client.get(format!("{endpoint}/moto-api/data.json")).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(MotoError::NotReady(endpoint.to_owned()))
}

/// A free TCP port on 127.0.0.1 (bound, then released).
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
