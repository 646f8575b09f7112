//! The container image is built, not only written: `scripts/image.sh` assembles the static
//! release binary `FROM scratch` with buildah into an OCI archive, and this checks what it
//! made. The archive's config against the Dockerfile's final stage (user, port, entrypoint,
//! command, env, hence the config path); the reference a `kind load image-archive` imports it
//! under against the one k8s/ runs; then, unpacked with skopeo and umoci, the binary has no
//! dynamic dependency (`ldd`), the files are owned as the Dockerfile's base has them, the
//! unpacked binary's `check` accepts `config/demo.yaml`, and — where this process may chroot —
//! the binary runs as the image's user inside the unpacked root filesystem with nothing of the
//! host, finding its config at the image's default path. A second build of the same commit
//! gives the same manifest digest.
//!
//! `./scripts/test.sh` installs buildah, skopeo and umoci (Debian packages) and builds the
//! static binary once (`FLOWBRIDGE_STATIC_BIN`); without that variable the script builds it.
//! Where buildah is missing the tests say so and pass without checking anything.

// Test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;
use support::dockerfile::{self, final_stage, instr};
use support::repo_root;

/// The reference the image is stored under: what k8s/ runs and `kind load` imports.
const TAG: &str = "kind.local/flowbridge:0.1.0";

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Where `tool` is on PATH, if it is.
fn which(tool: &str) -> Option<PathBuf> {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// The OCI archive, built once per test binary; `None` (with a message) without buildah.
fn archive() -> Option<&'static Path> {
    static ARCHIVE: OnceLock<Option<PathBuf>> = OnceLock::new();
    ARCHIVE
        .get_or_init(|| {
            if which("buildah").is_none() {
                eprintln!(
                    "SKIPPED: buildah is not installed (Debian: apt-get install buildah skopeo \
                     umoci; ./scripts/test.sh installs them)"
                );
                return None;
            }
            Some(build("flowbridge-oci.tar"))
        })
        .as_deref()
}

/// `scripts/image.sh` writing `target/tmp/image/NAME` (with the static binary of
/// `FLOWBRIDGE_STATIC_BIN` when set).
fn build(name: &str) -> PathBuf {
    let dir = repo_root().join("target/tmp/image");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(name);
    let mut cmd = Command::new(repo_root().join("scripts/image.sh"));
    cmd.arg("--out").arg(&out).args(["--tag", TAG]);
    if let Some(bin) = std::env::var_os("FLOWBRIDGE_STATIC_BIN") {
        cmd.arg("--binary").arg(bin);
    }
    let built = run(&mut cmd);
    eprintln!("{}", String::from_utf8_lossy(&built.stderr));
    out
}

/// The archive's `index.json`.
fn index(archive: &Path) -> Value {
    let index = run(Command::new("tar")
        .arg("-xOf")
        .arg(archive)
        .arg("index.json"));
    serde_json::from_slice(&index.stdout).unwrap()
}

/// The archive unpacked by umoci (through an OCI layout made by skopeo): the bundle directory,
/// whose `rootfs/` is the image's file system.
fn unpacked() -> Option<&'static Path> {
    static BUNDLE: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUNDLE
        .get_or_init(|| {
            let archive = archive()?;
            let dir = archive.parent().unwrap();
            let layout = dir.join("layout");
            let bundle = dir.join("bundle");
            for d in [&layout, &bundle] {
                let _ = std::fs::remove_dir_all(d);
            }
            run(Command::new("skopeo")
                .arg("copy")
                .arg(format!("oci-archive:{}", archive.display()))
                .arg(format!("oci:{}:flowbridge", layout.display())));
            let mut umoci = Command::new("umoci");
            umoci.arg("unpack");
            if !is_root() {
                umoci.arg("--rootless");
            }
            run(umoci
                .arg("--image")
                .arg(format!("{}:flowbridge", layout.display()))
                .arg(&bundle));
            Some(bundle)
        })
        .as_deref()
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn archive_config() -> Option<Value> {
    let archive = archive()?;
    let out = run(Command::new("skopeo")
        .args(["inspect", "--config"])
        .arg(format!("oci-archive:{}", archive.display())));
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn the_archive_config_is_the_dockerfiles_final_stage() {
    let Some(image) = archive_config() else {
        return;
    };
    let config = &image["config"];
    let stage = final_stage();
    assert_eq!(image["os"], "linux");
    assert_eq!(
        config["User"],
        instr(&stage, "USER")[0].as_str(),
        "{config}"
    );
    let port = &instr(&stage, "EXPOSE")[0];
    let ports: Vec<&String> = config["ExposedPorts"].as_object().unwrap().keys().collect();
    assert_eq!(ports, [&format!("{port}/tcp")]);
    let entrypoint: Value = serde_json::from_str(&instr(&stage, "ENTRYPOINT")[0]).unwrap();
    let cmd: Value = serde_json::from_str(&instr(&stage, "CMD")[0]).unwrap();
    assert_eq!(config["Entrypoint"], entrypoint);
    assert_eq!(config["Cmd"], cmd);
    let mut env: Vec<String> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_owned())
        .collect();
    env.sort();
    let mut want: Vec<String> = dockerfile::env(&stage)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    want.sort();
    assert_eq!(
        env, want,
        "the image's env is the Dockerfile's, nothing more"
    );
    assert_eq!(
        image["config"]["Labels"]["org.opencontainers.image.title"],
        "flowbridge"
    );
    // One layer: nothing but what scripts/image.sh put there.
    assert_eq!(image["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
}

#[test]
fn the_archive_carries_the_reference_k8s_runs() {
    let Some(archive) = archive() else {
        return;
    };
    let index = index(archive);
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{index}");
    assert_eq!(
        manifests[0]["annotations"]["org.opencontainers.image.ref.name"],
        TAG
    );
    let ksvc = std::fs::read_to_string(repo_root().join("k8s/base/flowbridge.yaml")).unwrap();
    assert!(
        ksvc.contains(&format!("image: {TAG}")),
        "k8s/base/flowbridge.yaml runs another image than {TAG}"
    );
}

#[test]
fn the_unpacked_binary_is_static_and_checks_the_demo_config() {
    let Some(bundle) = unpacked() else {
        return;
    };
    let rootfs = bundle.join("rootfs");
    let binary = rootfs.join("flowbridge");
    // ldd exits non-zero for a binary with no dynamic section.
    let ldd = Command::new("ldd").arg(&binary).output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&ldd.stdout),
        String::from_utf8_lossy(&ldd.stderr)
    );
    assert!(
        said.contains("not a dynamic executable") || said.contains("statically linked"),
        "ldd {}: {said}",
        binary.display()
    );
    // The files the base image provides, with the owners and modes it gives them.
    for (path, mode) in [
        ("flowbridge", 0o755),
        ("etc/ssl/certs/ca-certificates.crt", 0o644),
        ("etc/passwd", 0o644),
        ("etc/nsswitch.conf", 0o644),
        ("tmp", 0o1777),
    ] {
        let meta = std::fs::metadata(rootfs.join(path)).unwrap();
        assert_eq!(meta.mode() & 0o7777, mode, "{path}");
        if is_root() {
            assert_eq!(meta.uid(), 0, "{path} is owned by root");
        }
    }
    if is_root() {
        let home = std::fs::metadata(rootfs.join("home/nonroot")).unwrap();
        assert_eq!((home.uid(), home.gid()), (65532, 65532));
    }
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(
        passwd
            .lines()
            .any(|l| l.starts_with("nonroot:x:65532:65532:")),
        "{passwd}"
    );
    let certs = std::fs::read_to_string(rootfs.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    assert!(certs.matches("BEGIN CERTIFICATE").count() > 50);

    let checked = run(Command::new(&binary)
        .args(["check", "--config"])
        .arg(repo_root().join("config/demo.yaml"))
        .env_clear());
    let text = String::from_utf8_lossy(&checked.stdout);
    assert!(text.contains("ok: 1 route(s)"), "check printed: {text}");
}

/// The unpacked root filesystem, when this process may chroot into it (root).
fn chroot_rootfs() -> Option<PathBuf> {
    let bundle = unpacked()?;
    if !is_root() {
        eprintln!("SKIPPED: chroot needs root, and this test process is not root");
        return None;
    }
    Some(bundle.join("rootfs"))
}

#[test]
fn the_binary_runs_inside_the_image_as_its_user() {
    let Some(rootfs) = chroot_rootfs() else {
        return;
    };
    let stage = final_stage();
    let env = dockerfile::env(&stage);
    let config_path = &env
        .iter()
        .find(|(k, _)| k == "FLOWBRIDGE_CONFIG")
        .unwrap()
        .1;
    let inside = rootfs.join(config_path.trim_start_matches('/'));
    std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
    std::fs::copy(repo_root().join("config/demo.yaml"), &inside).unwrap();
    // Only the image's files, its user, its env: `check` without arguments reads the config
    // from FLOWBRIDGE_CONFIG as `serve` does in a pod.
    let entrypoint: Vec<String> = serde_json::from_str(&instr(&stage, "ENTRYPOINT")[0]).unwrap();
    // The image's env only: no PATH, so the host's chroot is named by its path.
    let mut chroot = Command::new(which("chroot").expect("chroot (coreutils)"));
    chroot
        .arg(format!("--userspec={}", instr(&stage, "USER")[0]))
        .arg(&rootfs)
        .arg(&entrypoint[0])
        .arg("check")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)));
    let out = run(&mut chroot);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ok: 1 route(s)"), "check printed: {text}");
    std::fs::remove_file(&inside).unwrap();
}

/// Layers carry the last commit's time and sorted, owned entries: building the same commit
/// again gives the same manifest, byte for byte.
#[test]
fn two_builds_of_one_commit_are_the_same_image() {
    let Some(first) = archive() else {
        return;
    };
    let again = build("flowbridge-oci-again.tar");
    let digest = |a: &Path| index(a)["manifests"][0]["digest"].clone();
    assert_eq!(digest(first), digest(&again));
    std::fs::remove_file(again).unwrap();
}

/// The static glibc binary resolves names with nothing but the image's files: inside the
/// unpacked root filesystem, as the image's user, `flowbridge send` reaches a name that only the
/// image's `/etc/hosts` knows (a pod's kubelet-managed hosts file works the same way; DNS goes
/// through the same built-in name service, by `/etc/nsswitch.conf`).
#[test]
fn the_binary_resolves_names_inside_the_image() {
    let Some(rootfs) = chroot_rootfs() else {
        return;
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap() == 1 {
            head.push(byte[0]);
        }
        conn.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .unwrap();
        String::from_utf8_lossy(&head).to_lowercase()
    });
    let hosts = rootfs.join("etc/hosts");
    std::fs::write(&hosts, "127.0.0.1 flowbridge-image-test.invalid\n").unwrap();
    // The device nodes every container runtime gives a container: in the static glibc build
    // the getrandom crate falls back to /dev/random and /dev/urandom for the event ids (strace
    // shows it), and without them `send` could not make one.
    let dev = rootfs.join("dev");
    std::fs::create_dir_all(&dev).unwrap();
    for (name, minor) in [
        ("null", "3"),
        ("zero", "5"),
        ("random", "8"),
        ("urandom", "9"),
    ] {
        run(Command::new("mknod")
            .args(["-m", "666"])
            .arg(dev.join(name))
            .args(["c", "1", minor]));
    }
    let stage = final_stage();
    let out = run(Command::new(which("chroot").expect("chroot (coreutils)"))
        .arg(format!("--userspec={}", instr(&stage, "USER")[0]))
        .arg(&rootfs)
        .args([
            "/flowbridge",
            "send",
            "--type",
            "image.test",
            "--source",
            "/image",
        ])
        .arg(format!("http://flowbridge-image-test.invalid:{port}/"))
        .arg("--no-reply")
        .env_clear());
    std::fs::remove_file(&hosts).unwrap();
    std::fs::remove_dir_all(&dev).unwrap();
    let request = server.join().unwrap();
    assert!(
        request.contains("host: flowbridge-image-test.invalid"),
        "{request}"
    );
    assert!(request.contains("ce-type: image.test"), "{request}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("202"), "{said}");
}
