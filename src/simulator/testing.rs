//! A simulator running on loopback for tests, wherever in the crate they are.

use std::net::SocketAddr;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{Simulator, SimulatorConfig, SimulatorStats};

/// A running simulator and the handles a test needs.
pub(crate) struct Running {
    pub video: SocketAddr,
    pub control: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<SimulatorStats>>,
}

impl Running {
    /// Binds `config` (loopback, and port 0 for kernel-chosen ports, unless the test
    /// says otherwise) and runs it until [`Running::shut_down`].
    pub async fn start(config: SimulatorConfig) -> Running {
        let simulator = Simulator::bind(config).await.expect("simulator binds");
        let video = simulator.local_video_addr();
        let control = simulator.local_control_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(simulator.run(async {
            let _ = stopped.await;
        }));
        Running {
            video,
            control,
            stop,
            task,
        }
    }

    /// A default simulator on free loopback ports.
    pub async fn on_free_ports() -> Running {
        Running::start(SimulatorConfig {
            video_port: 0,
            control_port: 0,
            ..SimulatorConfig::default()
        })
        .await
    }

    pub async fn shut_down(self) -> SimulatorStats {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap()
    }
}
