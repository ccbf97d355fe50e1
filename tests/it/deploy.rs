//! `deploy/`: what puts Ekran on real boxes, checked with the tools that
//! would reject it there. Every systemd unit passes `systemd-analyze verify`
//! (and a broken one is shown to fail it); every shell script passes
//! shellcheck; the Pi provisioning script is run twice against a fake
//! Raspberry Pi OS root and must change nothing the second time, and its
//! `--dry-run` must change nothing at all; the arm64 `.deb` is packaged from a
//! stand-in binary and inspected with dpkg-deb; the reverse-proxy configs pass
//! `nginx -t` and `caddy validate`; the PostgreSQL setup and the backup script
//! run against a real PostgreSQL and a real SQLite file.
//!
//! The arm64 sysroot, the cross-build itself and the qemu run of the arm64
//! binary need a Debian mirror and minutes of CPU, too much for the suite:
//! `deploy/build-arm64-deb.sh` and `deploy/check-arm64.sh` (see deploy/README.md).

// Test helpers outside #[test] fns: a panic is the failure report here.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/deploy");
/// The units the deployment needs; the walk over `deploy/` must find them all.
const EXPECTED_UNITS: [&str; 5] = [
    "ekran-player.service",
    "ekran-server.service",
    "ekran-server@.service",
    "ekran-backup.service",
    "ekran-backup.timer",
];
/// The server's own long-poll cap (`MAX_WAIT_SECS` in the server's device
/// API): the proxies' read timeouts must exceed it.
const SERVER_LONG_POLL_CAP_SECS: u64 = 120;
/// `ekran server --max-upload-bytes` default (4 GiB): the proxies must let
/// uploads of that size through.
const SERVER_DEFAULT_MAX_UPLOAD_BYTES: u64 = 4 * 1024 * 1024 * 1024;

fn repo() -> PathBuf {
    PathBuf::from(REPO)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(command: &mut Command) -> Output {
    command.output().unwrap_or_else(|e| {
        panic!("could not start {command:?}: {e} (is it installed? see .ci/install-deps.sh)")
    })
}

/// Runs the command and requires success; returns stdout.
fn run_ok(command: &mut Command) -> String {
    let output = run(command);
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Every file under `dir` (recursively) whose name passes `keep`, sorted.
fn files_under(dir: &Path, keep: &dyn Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if keep(path.file_name().unwrap().to_str().unwrap()) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn deploy_units() -> Vec<PathBuf> {
    files_under(&repo().join("deploy"), &|name| {
        [".service", ".timer", ".socket", ".path", ".target"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
    })
}

// --- systemd units -----------------------------------------------------------

/// Writes `unit_text` as `unit_name` into `scratch` for systemd-analyze and
/// returns the path to hand it. Commands the unit runs that are not installed
/// here (`/usr/bin/ekran`, `/usr/bin/cage`, `/usr/local/sbin/ekran-backup`) are
/// replaced by stub executables under `scratch`, because verify refuses a unit
/// whose command is missing; nothing else changes. Templates are given as an
/// instance (`name@8081.service`), so their `%i` specifiers are expanded too.
fn stage_unit(unit_name: &str, unit_text: &str, scratch: &Path) -> PathBuf {
    let stubs = scratch.join("stubs");
    let units = scratch.join("units");
    fs::create_dir_all(&units).unwrap();
    let mut patched = String::new();
    for line in unit_text.lines() {
        patched.push_str(&stub_missing_command(line, &stubs));
        patched.push('\n');
    }
    fs::write(units.join(unit_name), patched).unwrap();
    match unit_name.split_once("@.") {
        Some((prefix, suffix)) => units.join(format!("{prefix}@8081.{suffix}")),
        None => units.join(unit_name),
    }
}

/// Runs `systemd-analyze verify` on `unit_text` (named `unit_name`), staged
/// by [`stage_unit`]. Any output counts as a failure: verify reports unknown
/// keys and unparsable values as warnings but exits 0.
fn systemd_verify(unit_name: &str, unit_text: &str, scratch: &Path) -> Result<(), String> {
    let staged = stage_unit(unit_name, unit_text, scratch);
    let output = run(Command::new("systemd-analyze").arg("verify").arg(&staged));
    let report = format!("{}{}", text(&output.stdout), text(&output.stderr));
    if output.status.success() && report.trim().is_empty() {
        Ok(())
    } else {
        Err(format!(
            "systemd-analyze verify {unit_name} ({}):\n{report}",
            output.status
        ))
    }
}

/// For an `Exec…=` line whose program does not exist on this machine, points
/// it at an executable stub at the same path under `stubs`.
fn stub_missing_command(line: &str, stubs: &Path) -> String {
    let Some((key, value)) = line.split_once('=') else {
        return line.to_owned();
    };
    if !key.trim_start().starts_with("Exec") {
        return line.to_owned();
    }
    // Exec prefixes: @ - : + ! (systemd.service(5), "Command lines").
    let command = value.trim_start_matches(['@', '-', ':', '+', '!']);
    let program = command.split_whitespace().next().unwrap_or("");
    if !program.starts_with('/') || Path::new(program).exists() {
        return line.to_owned();
    }
    let stub = stubs.join(program.trim_start_matches('/'));
    fs::create_dir_all(stub.parent().unwrap()).unwrap();
    fs::write(&stub, "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(&stub, fs::Permissions::from_mode(0o755)).unwrap();
    line.replacen(program, stub.to_str().unwrap(), 1)
}

#[test]
fn every_unit_in_deploy_passes_systemd_analyze_verify() {
    let units = deploy_units();
    let names: Vec<&str> = units
        .iter()
        .map(|path| path.file_name().unwrap().to_str().unwrap())
        .collect();
    for expected in EXPECTED_UNITS {
        assert!(
            names.contains(&expected),
            "deploy/ lacks {expected}; found {names:?}"
        );
    }
    let mut failures = Vec::new();
    for unit in &units {
        let scratch = tempfile::tempdir().unwrap();
        let name = unit.file_name().unwrap().to_str().unwrap();
        if let Err(report) =
            systemd_verify(name, &fs::read_to_string(unit).unwrap(), scratch.path())
        {
            failures.push(report);
        }
    }
    assert!(
        failures.is_empty(),
        "units that fail verification:\n{}",
        failures.join("\n")
    );
}

/// The check above must be able to fail: the same player unit with one
/// misspelt key, one bad value, one missing command is rejected each time.
#[test]
fn systemd_verify_check_rejects_a_broken_unit() {
    let unit = fs::read_to_string(repo().join("deploy/systemd/ekran-player.service")).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    systemd_verify("ekran-player.service", &unit, scratch.path())
        .expect("the shipped unit verifies");
    let breakages = [
        ("WatchdogSec=30", "WatchdogSecs=30"),
        ("Type=notify", "Type=notifyy"),
        ("Restart=always", "Restart=forever"),
        ("ProtectSystem=strict", "ProtectSystem=very"),
    ];
    for (good, bad) in breakages {
        assert!(unit.contains(good), "the player unit no longer has {good}");
        let broken = unit.replacen(good, bad, 1);
        let scratch = tempfile::tempdir().unwrap();
        let verdict = systemd_verify("ekran-player.service", &broken, scratch.path());
        assert!(verdict.is_err(), "verify accepted the unit with {bad}");
    }
    // A command that exists nowhere (not stubbed: a relative path is refused).
    let broken = unit.replacen("ExecStart=/usr/bin/cage", "ExecStart=usr/bin/cage", 1);
    let scratch = tempfile::tempdir().unwrap();
    assert!(systemd_verify("ekran-player.service", &broken, scratch.path()).is_err());
}

/// `systemd-analyze security` scores a unit's exposure from 0 (locked down)
/// to 10 (everything allowed); the units must stay as locked down as they
/// are. The player needs the GPU, decoders, sound, a tty and a login session,
/// so it scores higher than the server.
#[test]
fn units_keep_their_sandbox_exposure_scores() {
    // Exposure limits in tenths, as `--threshold` takes them.
    let limits = [
        ("deploy/systemd/ekran-player.service", 25),
        ("deploy/systemd/ekran-server.service", 15),
        ("deploy/systemd/ekran-server@.service", 15),
    ];
    for (unit, limit) in limits {
        let path = repo().join(unit);
        let name = path.file_name().unwrap().to_str().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let staged = stage_unit(name, &fs::read_to_string(&path).unwrap(), scratch.path());
        let output = run(Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--no-pager"])
            .arg(format!("--threshold={limit}"))
            .arg(&staged));
        let report = text(&output.stdout);
        let overall = report
            .lines()
            .find(|l| l.contains("Overall exposure level"))
            .unwrap_or("no overall score");
        assert!(
            output.status.success(),
            "{unit} is more exposed than {}.{}: {overall}\n{report}",
            limit / 10,
            limit % 10
        );
    }
}

/// Parses `Key=Value` lines of one unit into (key, values) in order.
fn unit_settings(path: &Path) -> Vec<(String, String)> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with('#') && !line.starts_with('['))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

fn setting<'a>(settings: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    settings
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn player_unit_is_a_watched_hardened_kiosk_with_only_its_devices() {
    let settings = unit_settings(&repo().join("deploy/systemd/ekran-player.service"));
    let one = |key: &str| -> String {
        let values = setting(&settings, key);
        assert_eq!(values.len(), 1, "{key} should be set once, is {values:?}");
        values[0].to_owned()
    };
    assert_eq!(one("Type"), "notify");
    // The player is cage's child, not the main process.
    assert_eq!(one("NotifyAccess"), "all");
    assert!(one("WatchdogSec").parse::<u32>().unwrap() > 0);
    assert_eq!(one("Restart"), "always");
    assert_eq!(
        one("ExecStart"),
        "/usr/bin/cage -s -- /usr/bin/ekran player --config /etc/ekran/player.toml"
    );
    assert_eq!(one("TTYPath"), "/dev/tty1");
    assert_eq!(one("StandardOutput"), "journal");
    assert_eq!(one("ProtectSystem"), "strict");
    assert_eq!(one("NoNewPrivileges"), "yes");
    assert_eq!(one("DevicePolicy"), "closed");
    assert_eq!(one("StateDirectory"), "ekran-player");
    assert!(one("User") != "root");
    let devices = setting(&settings, "DeviceAllow");
    for needed in [
        "char-drm rw",
        "char-video4linux rw",
        "char-alsa rw",
        "/dev/tty1 rw",
    ] {
        assert!(
            devices.contains(&needed),
            "DeviceAllow lacks {needed}: {devices:?}"
        );
    }
    assert!(
        setting(&settings, "ExecStartPre")
            .iter()
            .any(|pre| pre.contains("setterm --blank 0") && pre.contains("--cursor off")),
        "console blanking and cursor are not turned off"
    );
}

// --- shell scripts --------------------------------------------------------------

#[test]
fn every_shell_script_passes_shellcheck() {
    let mut scripts = files_under(&repo().join("deploy"), &|name| name.ends_with(".sh"));
    // .ci/run has no .sh suffix but is a bash script too.
    scripts.extend(files_under(&repo().join(".ci"), &|name| {
        name.ends_with(".sh") || name == "run"
    }));
    for expected in [
        "deploy/pi/provision.sh",
        "deploy/build-arm64-deb.sh",
        "deploy/arm64-sysroot.sh",
        "deploy/check-arm64.sh",
        "deploy/server/postgres-setup.sh",
        "deploy/server/ekran-backup.sh",
    ] {
        assert!(
            scripts.contains(&repo().join(expected)),
            "{expected} is missing"
        );
    }
    for script in &scripts {
        let mode = fs::metadata(script).unwrap().permissions().mode();
        assert!(mode & 0o111 != 0, "{} is not executable", script.display());
    }
    run_ok(
        Command::new("shellcheck")
            .arg("--shell=bash")
            .args(&scripts),
    );
}

// --- Pi provisioning ----------------------------------------------------------------

/// A Raspberry Pi OS Lite Bookworm root as far as provision.sh sees it: the
/// boot partition's config.txt and cmdline.txt (as the image ships them), the
/// login prompt on tty1 enabled, and the ekran-player package's files.
fn fake_pi_root(root: &Path) {
    let boot = root.join("boot/firmware");
    fs::create_dir_all(&boot).unwrap();
    fs::copy(
        Path::new(FIXTURES).join("config.txt"),
        boot.join("config.txt"),
    )
    .unwrap();
    fs::copy(
        Path::new(FIXTURES).join("cmdline.txt"),
        boot.join("cmdline.txt"),
    )
    .unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(
        root.join("etc/os-release"),
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_CODENAME=bookworm\n",
    )
    .unwrap();
    let units = root.join("lib/systemd/system");
    fs::create_dir_all(&units).unwrap();
    fs::copy(
        "/lib/systemd/system/getty@.service",
        units.join("getty@.service"),
    )
    .unwrap();
    let getty_wants = root.join("etc/systemd/system/getty.target.wants");
    fs::create_dir_all(&getty_wants).unwrap();
    std::os::unix::fs::symlink(
        "/lib/systemd/system/getty@.service",
        getty_wants.join("getty@tty1.service"),
    )
    .unwrap();
    // What the ekran-player package installs (deploy/build-arm64-deb.sh).
    fs::copy(
        repo().join("deploy/systemd/ekran-player.service"),
        units.join("ekran-player.service"),
    )
    .unwrap();
    let example = repo().join("deploy/player.toml");
    if example.exists() {
        fs::create_dir_all(root.join("usr/share/ekran-player")).unwrap();
        fs::copy(example, root.join("usr/share/ekran-player/player.toml")).unwrap();
    }
}

/// Everything under `root`: file contents and modes, link targets, directories.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut entries = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let relative = path.strip_prefix(root).unwrap().to_path_buf();
            let described = if meta.file_type().is_symlink() {
                format!("link -> {}", fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                pending.push(path.clone());
                format!("dir {:o}", meta.permissions().mode())
            } else {
                format!(
                    "file {:o}\n{}",
                    meta.permissions().mode(),
                    text(&fs::read(&path).unwrap())
                )
            };
            entries.insert(relative, described);
        }
    }
    entries
}

fn provision(root: &Path, args: &[&str]) -> Output {
    run(Command::new(repo().join("deploy/pi/provision.sh"))
        .args(args)
        .arg("--root")
        .arg(root))
}

fn provision_ok(root: &Path, args: &[&str]) -> String {
    let output = provision(root, args);
    assert!(
        output.status.success(),
        "provision.sh {args:?} failed:\n{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

const PROVISION_ARGS: [&str; 6] = [
    "--server",
    "https://signage.example.org/",
    "--rotate",
    "90",
    "--hdmi-mode",
    "1920x1080@60",
];

#[test]
fn provisioning_twice_gives_the_same_box() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fake_pi_root(root);
    let before = snapshot(root);

    provision_ok(root, &PROVISION_ARGS);
    let first = snapshot(root);
    assert_ne!(before, first, "the first run changed nothing");
    let second_report = provision_ok(root, &PROVISION_ARGS);
    assert_eq!(first, snapshot(root), "the second run changed the box");
    assert!(
        !second_report
            .lines()
            .any(|l| l.starts_with("provision: changed:") || l.starts_with("provision: running:")),
        "the second run reports changes:\n{second_report}"
    );

    // cmdline.txt: still one line, the image's tokens in order, ours once each.
    let cmdline = fs::read_to_string(root.join("boot/firmware/cmdline.txt")).unwrap();
    assert_eq!(
        cmdline.lines().count(),
        1,
        "cmdline.txt must stay one line: {cmdline:?}"
    );
    let original = fs::read_to_string(Path::new(FIXTURES).join("cmdline.txt")).unwrap();
    assert!(
        cmdline.starts_with(original.trim_end()),
        "image tokens lost: {cmdline}"
    );
    for token in [
        "consoleblank=0",
        "vt.global_cursor_default=0",
        "video=HDMI-A-1:1920x1080M@60D,rotate=90",
    ] {
        let count = cmdline.split_whitespace().filter(|t| *t == token).count();
        assert_eq!(count, 1, "{token} appears {count} times in {cmdline}");
    }

    // config.txt: the image's settings kept, one managed block under [all].
    let config_txt = fs::read_to_string(root.join("boot/firmware/config.txt")).unwrap();
    let image = fs::read_to_string(Path::new(FIXTURES).join("config.txt")).unwrap();
    assert!(
        config_txt.starts_with(image.trim_end()),
        "image settings changed"
    );
    assert_eq!(config_txt.matches("# BEGIN ekran").count(), 1);
    let block = &config_txt[config_txt.find("# BEGIN ekran").unwrap()..];
    assert!(
        block.contains("[all]\n") && block.contains("hdmi_force_hotplug=1\n"),
        "{block}"
    );
    // The image has the KMS overlay already: not added twice.
    assert_eq!(config_txt.matches("dtoverlay=vc4-kms-v3d").count(), 1);

    // player.toml: valid TOML with the server, state dir and output settings.
    let config: toml::Table = fs::read_to_string(root.join("etc/ekran/player.toml"))
        .unwrap()
        .parse()
        .expect("provision.sh writes valid TOML");
    assert_eq!(
        config["server_url"].as_str(),
        Some("https://signage.example.org")
    );
    assert_eq!(config["data_dir"].as_str(), Some("/var/lib/ekran-player"));
    let output = config["output"].as_table().unwrap();
    assert_eq!(output["rotation"].as_integer(), Some(90));
    assert_eq!(output["width"].as_integer(), Some(1920));
    assert_eq!(output["height"].as_integer(), Some(1080));

    // The kiosk starts at boot; the login prompt left tty1.
    let wants = root.join("etc/systemd/system/multi-user.target.wants/ekran-player.service");
    assert!(
        fs::symlink_metadata(&wants).is_ok(),
        "ekran-player.service is not enabled"
    );
    let getty = root.join("etc/systemd/system/getty.target.wants/getty@tty1.service");
    assert!(
        fs::symlink_metadata(&getty).is_err(),
        "getty@tty1 still enabled"
    );
    // The originals are kept once, for undoing by hand.
    assert_eq!(
        fs::read_to_string(root.join("boot/firmware/cmdline.txt.before-ekran")).unwrap(),
        original
    );
}

#[test]
fn dry_run_prints_the_changes_and_makes_none() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fake_pi_root(root);
    let before = snapshot(root);
    let mut args = PROVISION_ARGS.to_vec();
    args.push("--dry-run");
    let report = provision_ok(root, &args);
    assert_eq!(before, snapshot(root), "--dry-run changed files:\n{report}");
    for expected in [
        "would change: ",
        "+consoleblank=0",
        "+hdmi_force_hotplug=1",
        "+server_url = \"https://signage.example.org\"",
        "would run: systemctl",
        "enable ekran-player.service",
        "disable getty@tty1.service",
        "nothing was changed",
    ] {
        // cmdline.txt's diff shows the whole new line; match the token inside it.
        let found = if expected == "+consoleblank=0" {
            report
                .lines()
                .any(|l| l.starts_with('+') && l.contains("consoleblank=0"))
        } else {
            report.contains(expected)
        };
        assert!(found, "the dry run does not show {expected:?}:\n{report}");
    }
}

#[test]
fn reprovisioning_replaces_settings_instead_of_adding_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fake_pi_root(root);
    // No packaged example: the config starts empty.
    let _ = fs::remove_dir_all(root.join("usr/share/ekran-player"));
    provision_ok(root, &PROVISION_ARGS);
    provision_ok(
        root,
        &[
            "--server",
            "http://10.0.0.5:8080",
            "--rotate",
            "0",
            "--hdmi-mode",
            "1280x720",
        ],
    );
    let config_text = fs::read_to_string(root.join("etc/ekran/player.toml")).unwrap();
    let config: toml::Table = config_text.parse().unwrap();
    assert_eq!(config["server_url"].as_str(), Some("http://10.0.0.5:8080"));
    assert_eq!(config["output"]["rotation"].as_integer(), Some(0));
    assert_eq!(config["output"]["width"].as_integer(), Some(1280));
    assert_eq!(
        config_text.matches("server_url").count(),
        1,
        "{config_text}"
    );
    let cmdline = fs::read_to_string(root.join("boot/firmware/cmdline.txt")).unwrap();
    let video: Vec<&str> = cmdline
        .split_whitespace()
        .filter(|t| t.starts_with("video="))
        .collect();
    assert_eq!(video, ["video=HDMI-A-1:1280x720MD"]);
}

#[test]
fn provisioning_refuses_bad_input_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fake_pi_root(root);
    let before = snapshot(root);
    let cases: [(&[&str], &str); 5] = [
        (&["--rotate", "90"], "--server URL is required"),
        (&["--server", "ftp://x"], "is not an http(s):// URL"),
        (
            &["--server", "https://x", "--rotate", "45"],
            "--rotate must be 0, 90, 180 or 270",
        ),
        (
            &["--server", "https://x", "--hdmi-mode", "big"],
            "--hdmi-mode must look like",
        ),
        (
            &["--server", "https://x", "--package", "/nonexistent.deb"],
            "--package cannot install into --root",
        ),
    ];
    for (args, message) in cases {
        let output = provision(root, args);
        assert!(!output.status.success(), "provision.sh {args:?} succeeded");
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(message),
            "provision.sh {args:?}: expected {message:?} in:\n{stderr}"
        );
        assert_eq!(
            before,
            snapshot(root),
            "provision.sh {args:?} changed files"
        );
    }
    // Not a Pi image (no boot partition).
    let empty = tempfile::tempdir().unwrap();
    let output = provision(empty.path(), &["--server", "https://x"]);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("not a Raspberry Pi OS system"));
}

// --- the arm64 package ----------------------------------------------------------------

fn deb_field(deb: &Path, field: &str) -> String {
    run_ok(Command::new("dpkg-deb").arg("--field").arg(deb).arg(field))
        .trim()
        .to_owned()
}

#[test]
fn arm64_package_holds_the_player_units_config_and_user_setup() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("ekran");
    // A stand-in for the cross-built binary: packaging must ship it byte for byte.
    fs::write(&binary, b"\x7fELF stand-in for the aarch64 ekran binary\n").unwrap();
    let out = dir.path().join("out");
    let mut command = Command::new(repo().join("deploy/build-arm64-deb.sh"));
    command
        .arg("--package-only")
        .arg(&binary)
        .arg("--output")
        .arg(&out);
    let example = repo().join("deploy/player.toml");
    let example = if example.exists() {
        example
    } else {
        // Before deploy/player.toml lands, ship a stand-in example.
        let stand_in = dir.path().join("player.toml");
        fs::write(&stand_in, "# example\n").unwrap();
        command.arg("--config-example").arg(&stand_in);
        stand_in
    };
    run_ok(&mut command);
    let deb = out.join(format!(
        "ekran-player_{}_arm64.deb",
        env!("CARGO_PKG_VERSION")
    ));
    assert!(deb.exists(), "no {}", deb.display());

    assert_eq!(deb_field(&deb, "Package"), "ekran-player");
    assert_eq!(deb_field(&deb, "Architecture"), "arm64");
    assert_eq!(deb_field(&deb, "Version"), env!("CARGO_PKG_VERSION"));
    let depends = deb_field(&deb, "Depends");
    let depends: Vec<&str> = depends
        .split(',')
        .map(|d| d.split_whitespace().next().unwrap())
        .collect();
    for needed in [
        "cage",
        "gstreamer1.0-plugins-base",
        "gstreamer1.0-plugins-good",
        "gstreamer1.0-plugins-bad",
        "gstreamer1.0-libav",
        "gstreamer1.0-alsa",
        "mesa-vulkan-drivers",
        "libgl1-mesa-dri",
        "libvulkan1",
        "libegl1",
        "adduser",
    ] {
        assert!(
            depends.contains(&needed),
            "Depends lacks {needed}: {depends:?}"
        );
    }

    let contents = run_ok(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    for (path, mode) in [
        ("./usr/bin/ekran", "-rwxr-xr-x root/root"),
        (
            "./lib/systemd/system/ekran-player.service",
            "-rw-r--r-- root/root",
        ),
        ("./etc/pam.d/ekran-player", "-rw-r--r-- root/root"),
        (
            "./usr/share/ekran-player/player.toml",
            "-rw-r--r-- root/root",
        ),
        (
            "./usr/share/doc/ekran-player/copyright",
            "-rw-r--r-- root/root",
        ),
    ] {
        assert!(
            contents
                .lines()
                .any(|l| l.starts_with(mode) && l.ends_with(path)),
            "{path} ({mode}) not in the package:\n{contents}"
        );
    }

    let unpacked = dir.path().join("unpacked");
    run_ok(
        Command::new("dpkg-deb")
            .arg("--raw-extract")
            .arg(&deb)
            .arg(&unpacked),
    );
    assert_eq!(
        fs::read(unpacked.join("usr/bin/ekran")).unwrap(),
        fs::read(&binary).unwrap()
    );
    assert_eq!(
        fs::read(unpacked.join("lib/systemd/system/ekran-player.service")).unwrap(),
        fs::read(repo().join("deploy/systemd/ekran-player.service")).unwrap()
    );
    assert_eq!(
        fs::read(unpacked.join("usr/share/ekran-player/player.toml")).unwrap(),
        fs::read(&example).unwrap()
    );
    assert_eq!(
        fs::read(unpacked.join("usr/share/ekran-player/provision.sh")).unwrap(),
        fs::read(repo().join("deploy/pi/provision.sh")).unwrap()
    );
    assert_eq!(
        fs::read_to_string(unpacked.join("DEBIAN/conffiles")).unwrap(),
        "/etc/pam.d/ekran-player\n"
    );
    let postinst = fs::read_to_string(unpacked.join("DEBIAN/postinst")).unwrap();
    assert!(postinst.contains("adduser --system --group"), "{postinst}");
    for group in ["video", "render", "audio", "input"] {
        assert!(
            postinst.contains(group),
            "postinst does not add ekran to {group}"
        );
    }
    // The PAM stack the unit names must register a logind session (seat access for cage).
    let pam = fs::read_to_string(unpacked.join("etc/pam.d/ekran-player")).unwrap();
    assert!(
        pam.lines()
            .any(|l| l.starts_with("session") && l.contains("pam_systemd.so"))
    );
    let scripts: Vec<PathBuf> = ["postinst", "prerm", "postrm"]
        .iter()
        .map(|name| unpacked.join("DEBIAN").join(name))
        .collect();
    for script in &scripts {
        assert!(fs::metadata(script).unwrap().permissions().mode() & 0o111 != 0);
    }
    // Maintainer scripts run under dpkg's /bin/sh (dash): POSIX sh only.
    run_ok(Command::new("shellcheck").arg("--shell=sh").args(&scripts));
}

// --- the production server ------------------------------------------------------------

/// The number in an nginx directive such as `client_max_body_size 4g;` in bytes or seconds.
fn nginx_directive<'a>(config: &'a str, name: &str) -> Vec<&'a str> {
    config
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with(&format!("{name} ")))
        .map(|l| l[name.len()..].trim().trim_end_matches(';').trim())
        .collect()
}

#[test]
fn nginx_config_passes_nginx_t_and_passes_long_polls_and_uploads() {
    let config = fs::read_to_string(repo().join("deploy/server/nginx.conf")).unwrap();
    // Settings the device API depends on.
    for (name, expected) in [
        ("proxy_request_buffering", "off"),
        ("proxy_buffering", "off"),
        ("client_max_body_size", "4g"),
    ] {
        assert_eq!(nginx_directive(&config, name), [expected], "{name}");
    }
    assert_eq!(
        SERVER_DEFAULT_MAX_UPLOAD_BYTES,
        4 << 30,
        "client_max_body_size 4g must follow the server"
    );
    for name in [
        "proxy_read_timeout",
        "proxy_send_timeout",
        "client_body_timeout",
    ] {
        let values = nginx_directive(&config, name);
        let seconds: u64 = values[0].trim_end_matches('s').parse().unwrap();
        assert!(
            seconds > SERVER_LONG_POLL_CAP_SECS,
            "{name} {seconds}s is not above the long-poll cap"
        );
    }

    // nginx -t on the site file inside a minimal main config, with a
    // throwaway certificate in place of Let's Encrypt's.
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path();
    run_ok(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
            ])
            .args(["-subj", "/CN=signage.example.org", "-days", "1"])
            .arg("-keyout")
            .arg(prefix.join("key.pem"))
            .arg("-out")
            .arg(prefix.join("cert.pem")),
    );
    let site = config
        .replace(
            "/etc/letsencrypt/live/signage.example.org/fullchain.pem",
            prefix.join("cert.pem").to_str().unwrap(),
        )
        .replace(
            "/etc/letsencrypt/live/signage.example.org/privkey.pem",
            prefix.join("key.pem").to_str().unwrap(),
        );
    let nginx_t = |site: &str| -> Output {
        fs::write(prefix.join("site.conf"), site).unwrap();
        fs::write(
            prefix.join("nginx.conf"),
            format!(
                "pid {0}/nginx.pid;\nerror_log stderr;\nevents {{}}\nhttp {{ include {0}/site.conf; }}\n",
                prefix.display()
            ),
        )
        .unwrap();
        run(Command::new("nginx")
            .arg("-t")
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(prefix.join("nginx.conf")))
    };
    let output = nginx_t(&site);
    assert!(
        output.status.success(),
        "nginx -t:\n{}",
        text(&output.stderr)
    );
    // And nginx -t does catch a broken site.
    let output = nginx_t(&site.replace("proxy_buffering off;", "proxy_buffering sometimes;"));
    assert!(
        !output.status.success(),
        "nginx -t accepted a broken config"
    );
}

#[test]
fn caddyfile_validates_and_passes_long_polls_and_uploads() {
    let path = repo().join("deploy/server/Caddyfile");
    let caddyfile = fs::read_to_string(&path).unwrap();
    assert!(
        caddyfile.contains("max_size 4GiB"),
        "upload limit must follow the server's 4 GiB"
    );
    assert!(
        caddyfile.contains("flush_interval -1"),
        "responses must stream"
    );
    assert!(caddyfile.contains("response_header_timeout 300s"));
    let home = tempfile::tempdir().unwrap();
    let validate = |file: &Path| -> Output {
        run(Command::new("caddy")
            .args(["validate", "--adapter", "caddyfile", "--config"])
            .arg(file)
            // Caddy keeps state under $HOME/XDG dirs: keep it out of the real ones.
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path()))
    };
    let output = validate(&path);
    assert!(
        output.status.success(),
        "caddy validate:\n{}",
        text(&output.stderr)
    );
    let broken = home.path().join("Caddyfile");
    fs::write(
        &broken,
        caddyfile.replace("lb_policy least_conn", "lb_policy fastest_please"),
    )
    .unwrap();
    assert!(
        !validate(&broken).status.success(),
        "caddy accepted a broken Caddyfile"
    );
}

/// The PostgreSQL the server tests use (superuser); `EKRAN_TEST_PG_URL` overrides it.
fn pg_admin_url() -> String {
    std::env::var("EKRAN_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn psql(url: &str, sql: &str) -> String {
    run_ok(Command::new("psql").args([
        "--no-psqlrc",
        "-qtA",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        url,
        "-c",
        sql,
    ]))
    .trim()
    .to_owned()
}

/// Drops the role and database a test made, even when it fails.
struct PgCleanup {
    name: String,
}

impl Drop for PgCleanup {
    fn drop(&mut self) {
        let admin = pg_admin_url();
        let _ = Command::new("psql")
            .args(["--no-psqlrc", "-q", "-d", &admin, "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
        let _ = Command::new("psql")
            .args(["--no-psqlrc", "-q", "-d", &admin, "-c"])
            .arg(format!("DROP ROLE IF EXISTS {}", self.name))
            .output();
    }
}

fn database_url_in(env_file: &Path) -> String {
    let env = fs::read_to_string(env_file).unwrap();
    let urls: Vec<&str> = env
        .lines()
        .filter_map(|l| l.strip_prefix("DATABASE_URL="))
        .collect();
    assert_eq!(urls.len(), 1, "one DATABASE_URL expected in:\n{env}");
    urls[0].to_owned()
}

#[test]
fn postgres_setup_then_backup_dumps_the_servers_database() {
    let name = format!("ekran_deploy_it_{}", std::process::id());
    let _cleanup = PgCleanup { name: name.clone() };
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("server.env");
    fs::write(&env_file, "RUST_LOG=debug\n").unwrap();
    let setup = || {
        run_ok(
            Command::new(repo().join("deploy/server/postgres-setup.sh"))
                .args([
                    "--role",
                    &name,
                    "--database",
                    &name,
                    "--admin-url",
                    &pg_admin_url(),
                ])
                .arg("--env-file")
                .arg(&env_file),
        )
    };
    setup();
    let url = database_url_in(&env_file);
    assert!(url.starts_with(&format!("postgres://{name}:")), "{url}");
    assert!(url.ends_with(&format!("@127.0.0.1:5432/{name}")), "{url}");
    // Other settings in the file survive; the file is not world-readable.
    assert!(
        fs::read_to_string(&env_file)
            .unwrap()
            .contains("RUST_LOG=debug\n")
    );
    assert_eq!(
        fs::metadata(&env_file).unwrap().permissions().mode() & 0o777,
        0o640
    );
    // Idempotent: a second run keeps the password the servers already use.
    setup();
    assert_eq!(database_url_in(&env_file), url);

    // The role logs in to its own database and may create the server's tables.
    assert_eq!(
        psql(&url, "SELECT current_user || ' ' || current_database()"),
        format!("{name} {name}")
    );
    psql(
        &url,
        "CREATE TABLE screens (id text PRIMARY KEY); INSERT INTO screens VALUES ('scr_backup_probe')",
    );

    // The backup: a pg_dump holding the row, and the data dir mirrored.
    let data = dir.path().join("data");
    fs::create_dir_all(data.join("media/ab")).unwrap();
    fs::write(data.join("signing.key"), "key").unwrap();
    fs::write(data.join("media/ab/abcdef"), "media bytes").unwrap();
    let backups = dir.path().join("backups");
    run_ok(
        Command::new(repo().join("deploy/server/ekran-backup.sh"))
            .env("DATABASE_URL", &url)
            .env("EKRAN_DATA_DIR", &data)
            .env("EKRAN_BACKUP_DIR", &backups),
    );
    let dumps = files_under(&backups.join("db"), &|n| n.ends_with(".dump"));
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    let restored_sql = run_ok(Command::new("pg_restore").arg("--file=-").arg(&dumps[0]));
    assert!(
        restored_sql.contains("scr_backup_probe"),
        "the dump lacks the row"
    );
    assert_eq!(
        fs::read_to_string(backups.join("data/media/ab/abcdef")).unwrap(),
        "media bytes"
    );
    assert_eq!(
        fs::read_to_string(backups.join("data/signing.key")).unwrap(),
        "key"
    );
    assert!(files_under(&backups, &|n| n.contains(".partial")).is_empty());
}

#[test]
fn backup_of_a_sqlite_server_is_a_consistent_copy_beside_the_media() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fs::create_dir_all(data.join("media/cd")).unwrap();
    // A live WAL-mode database, as the server keeps it; the name does not matter.
    run_ok(Command::new("sqlite3").arg(data.join("ekran.sqlite3")).arg(
        "PRAGMA journal_mode=WAL; CREATE TABLE screens (id TEXT); INSERT INTO screens VALUES ('scr_1');",
    ));
    fs::write(data.join("media/cd/cdef"), "clip").unwrap();
    let backups = dir.path().join("backups");
    let backup = || {
        run_ok(
            Command::new(repo().join("deploy/server/ekran-backup.sh"))
                .env_remove("DATABASE_URL")
                .env("EKRAN_DATA_DIR", &data)
                .env("EKRAN_BACKUP_DIR", &backups),
        )
    };
    backup();
    let copies = files_under(&backups.join("db"), &|n| n.ends_with(".sqlite"));
    assert_eq!(copies.len(), 1, "{copies:?}");
    let rows = run_ok(
        Command::new("sqlite3")
            .arg(&copies[0])
            .arg("SELECT id FROM screens"),
    );
    assert_eq!(rows.trim(), "scr_1");
    // The live database is copied through SQLite, never file by file.
    assert!(!backups.join("data/ekran.sqlite3").exists());
    assert_eq!(
        fs::read_to_string(backups.join("data/media/cd/cdef")).unwrap(),
        "clip"
    );

    // No database at all is an error, not an empty backup.
    let empty = tempfile::tempdir().unwrap();
    let output = run(Command::new(repo().join("deploy/server/ekran-backup.sh"))
        .env_remove("DATABASE_URL")
        .env("EKRAN_DATA_DIR", empty.path())
        .env("EKRAN_BACKUP_DIR", dir.path().join("none")));
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("no DATABASE_URL and no SQLite database"));
}

/// `ekran-server@.service` refuses to start several processes on SQLite: its
/// ExecStartPre guard, run the way systemd runs it (`$$` is a literal `$`,
/// `%i` the instance), passes only with a PostgreSQL `DATABASE_URL`.
#[test]
fn server_template_refuses_to_start_without_postgres() {
    let settings = unit_settings(&repo().join("deploy/systemd/ekran-server@.service"));
    let guard = setting(&settings, "ExecStartPre");
    assert_eq!(guard.len(), 1, "{guard:?}");
    let script = guard[0]
        .strip_prefix("/bin/sh -c '")
        .and_then(|s| s.strip_suffix('\''))
        .expect("the guard is /bin/sh -c '…'")
        .replace("$$", "$")
        .replace("%i", "8081");
    let guard_with = |url: Option<&str>| -> Output {
        let mut command = Command::new("/bin/sh");
        command.arg("-c").arg(&script).env_remove("DATABASE_URL");
        if let Some(url) = url {
            command.env("DATABASE_URL", url);
        }
        run(&mut command)
    };
    assert!(
        guard_with(Some("postgres://ekran:pw@db:5432/ekran"))
            .status
            .success()
    );
    assert!(
        guard_with(Some("postgresql://ekran@db/ekran"))
            .status
            .success()
    );
    for refused in [None, Some(""), Some("sqlite:///var/lib/ekran/ekran.db")] {
        let output = guard_with(refused);
        assert!(
            !output.status.success(),
            "started with DATABASE_URL={refused:?}"
        );
        assert!(
            text(&output.stderr)
                .contains("ekran-server@8081: several server processes need PostgreSQL")
        );
    }
}
