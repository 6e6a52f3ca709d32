// placeholder: replaced by H1's module at merge
//! Is there a borescope behind this interface? One read-only button poll, re-sent.
//!
//! This stand-in keeps the signature the service calls (`probe_scope`) so the service
//! can be built and tested on its own.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::link::socket::{SocketError, open_udp};
use crate::protocol::{ButtonAnswer, ButtonRequest};

/// Where to probe.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    /// The scope's control (button) port.
    pub scope: SocketAddr,
    /// Bind the probe's socket to this interface.
    pub interface: Option<String>,
}

/// The scope's first answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeReply {
    pub answered_after: Duration,
    /// The scope's button counter.
    pub button: u16,
}

/// Why the probe found no scope.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("no answer from {target} within {:.1} s", waited.as_secs_f64())]
    NoAnswer {
        target: SocketAddr,
        waited: Duration,
    },
    #[error(transparent)]
    Socket(#[from] SocketError),
}

/// How often the poll is re-sent.
const RESEND: Duration = Duration::from_millis(500);

/// Polls the button until the scope answers, at most `timeout`.
pub async fn probe_scope(
    target: &ProbeTarget,
    timeout: Duration,
) -> Result<ProbeReply, ProbeError> {
    let socket = open_udp(target.interface.as_deref())?;
    let started = Instant::now();
    let deadline = started + timeout;
    let mut counter: u16 = 0;
    let mut buf = [0u8; 256];
    while Instant::now() < deadline {
        counter = counter.wrapping_add(1);
        // A send error (no route yet) is the same as no answer: try again until the deadline.
        let _ = socket
            .send_to(&ButtonRequest { counter }.to_bytes(), target.scope)
            .await;
        let resend_at = (Instant::now() + RESEND).min(deadline);
        while let Ok(received) =
            tokio::time::timeout_at(resend_at.into(), socket.recv_from(&mut buf)).await
        {
            let Ok((len, from)) = received else {
                tokio::time::sleep_until(resend_at.into()).await;
                break;
            };
            if from != target.scope {
                continue;
            }
            if let Ok(answer) = ButtonAnswer::parse(&buf[..len]) {
                return Ok(ProbeReply {
                    answered_after: started.elapsed(),
                    button: answer.presses,
                });
            }
        }
    }
    Err(ProbeError::NoAnswer {
        target: target.scope,
        waited: started.elapsed(),
    })
}
