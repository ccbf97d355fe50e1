//! The systemd watchdog end to end: a real `ekran` process talks to a real
//! notify socket, as under systemd with `Type=notify` and `WatchdogSec=`.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn watchdog_pings_stop_when_the_playback_loop_stalls() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    // systemd's WatchdogSec=0.4: the agent checks every 200 ms.
    let mut child = Command::new(env!("CARGO_BIN_EXE_ekran"))
        .args(["agent", "watchdog-soak", "--beats", "25", "--beat-ms", "20"])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        // As under `cage -- ekran player`: the watchdog is the main PID's
        // (the compositor's), the player pings with NotifyAccess=all.
        .env("WATCHDOG_PID", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let mut buffer = [0u8; 256];
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let len = socket.recv(&mut buffer).unwrap();
    assert_eq!(&buffer[..len], b"READY=1\n");

    // While the fake playback loop beats (25 × 20 ms), pings arrive; once
    // it hangs they stop, though the process is alive.
    socket
        .set_read_timeout(Some(Duration::from_millis(900)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut pings = 0;
    loop {
        match socket.recv(&mut buffer) {
            Ok(len) => {
                assert_eq!(&buffer[..len], b"WATCHDOG=1\n");
                pings += 1;
                assert!(Instant::now() < deadline, "pings never stopped");
            }
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(error) => panic!("{error}"),
        }
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the process is alive, only its playback hung"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(pings >= 1, "pings while the playback loop advanced");
    assert!(
        pings <= 4,
        "{pings} pings for 500 ms of playback at one per 200 ms"
    );
}
