//! Shared by the asynchronous benchmarks' programs.

/// Raises the soft limit on open files to the hard limit (20,000 here): one process holds
/// thousands of connections.
pub fn raise_nofile() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid rlimit struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur = r.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
    }
    r.rlim_cur
}

/// The number after `--name` on the command line, if any.
pub fn option(args: &[String], name: &str) -> Option<usize> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
}

/// A server's first argument: `echo` (true) or `sink` (false); prints `usage` and exits
/// otherwise.
pub fn echo_or_sink(args: &[String], usage: &str) -> bool {
    match args.get(1).map(String::as_str) {
        Some("echo") => true,
        Some("sink") => false,
        _ => {
            eprintln!("usage: {usage}");
            std::process::exit(2);
        }
    }
}
