//! Building and running the C examples: the exact flags users get (`-Wall -Wextra -Werror
//! -pedantic`), linked against the library under test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use super::repo;

/// AddressSanitizer + UndefinedBehaviorSanitizer for the C side, stopping at the first report.
pub const ASAN_FLAGS: [&str; 5] = [
    "-fsanitize=address,undefined",
    "-fno-omit-frame-pointer",
    "-fno-sanitize-recover=all",
    "-g",
    "-O1",
];

pub fn target_dir() -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds `c-examples/NAME.c` and returns the executable.
pub fn build(name: &str) -> PathBuf {
    build_with(name, "c-examples", &[])
}

/// Builds `c-examples/NAME.c` with extra compiler flags (sanitizers, debug information) into
/// `<target>/<subdir>/NAME`, linked against the same library as `build`.
pub fn build_with(name: &str, subdir: &str, flags: &[&str]) -> PathBuf {
    build_source(&format!("c-examples/{name}.c"), subdir, flags)
}

/// Builds the C program at `source` (relative to the repository) like [`build_with`].
pub fn build_source(source: &str, subdir: &str, flags: &[&str]) -> PathBuf {
    compile(
        &repo().join(source),
        subdir,
        "cc",
        &[&["-std=c11"], flags].concat(),
    )
}

/// Compiles one C or C++ source file (`compiler` is `cc` or `c++`) with `-Wall -Wextra -Werror
/// -pedantic` and `flags` into `<target>/<subdir>/<file stem>`, linked against the library
/// under test.
pub fn compile(src: &Path, subdir: &str, compiler: &str, flags: &[&str]) -> PathBuf {
    let name = src.file_stem().unwrap().to_str().unwrap();
    let lib_dir = target_dir();
    let out_dir = lib_dir.join(subdir);
    std::fs::create_dir_all(&out_dir).unwrap();
    let exe = out_dir.join(name);
    // Tests build the same program concurrently while others run it: compile to a unique
    // file and rename it into place, so no one ever executes a file being written (ETXTBSY).
    static BUILDS: AtomicU64 = AtomicU64::new(0);
    let tmp = out_dir.join(format!(
        ".{name}.{}.{}",
        std::process::id(),
        BUILDS.fetch_add(1, Ordering::Relaxed)
    ));
    let out = Command::new(compiler)
        .args(["-Wall", "-Wextra", "-Werror", "-pedantic"])
        .args(flags)
        .arg("-I")
        .arg(repo().join("include"))
        .arg(src)
        .arg("-o")
        .arg(&tmp)
        .arg(format!("-L{}", lib_dir.display()))
        .args(["-lwshandle", "-lpthread"])
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .output()
        .expect(compiler);
    assert!(
        out.status.success(),
        "building {} failed:\n{}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, &exe).unwrap();
    exe
}

pub fn run(exe: &PathBuf, args: &[&str]) -> (Output, String) {
    let mut cmd = Command::new("timeout");
    cmd.arg("120").arg(exe).args(args);
    output_of(&mut cmd, &format!("{exe:?} {args:?}"))
}

/// Runs `cmd` to its end and returns its output and stdout; fails the test unless it exits 0.
pub fn output_of(cmd: &mut Command, what: &str) -> (Output, String) {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (out, stdout)
}

/// A C server example, killed (by its PID) when dropped.
pub struct CServer {
    child: Child,
    pub port: u16,
    out: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl CServer {
    pub fn start(name: &str, args: &[&str]) -> CServer {
        let exe = build(name);
        let mut child = Command::new(exe)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = out.next().unwrap().unwrap();
        let port = first
            .strip_prefix("listening on port ")
            .unwrap_or_else(|| panic!("{first}"))
            .parse()
            .unwrap();
        CServer { child, port, out }
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }

    /// The rest of its output, once it exits by itself.
    pub fn finish(mut self) -> String {
        let rest: Vec<String> = self.out.by_ref().map_while(Result::ok).collect();
        assert!(self.child.wait().unwrap().success());
        rest.join("\n")
    }
}

impl Drop for CServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
