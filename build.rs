//! Generates the C header into OUT_DIR with cbindgen. The committed `include/wshandle.h` is
//! compared against it by `tests/header.rs`; build.rs never writes outside OUT_DIR.

use std::env;
use std::path::PathBuf;

fn main() {
    let crate_dir = env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("wshandle.h");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");

    let mut config = cbindgen::Config::from_file(PathBuf::from(&crate_dir).join("cbindgen.toml"))
        .expect("cbindgen.toml");
    let version = |part: &str| env::var(format!("CARGO_PKG_VERSION_{part}")).expect("version");
    config.after_includes = Some(format!(
        "\n/** The version of this header: compare with ws_version() at run time. */\n\
         #define WSHANDLE_VERSION_MAJOR {}\n#define WSHANDLE_VERSION_MINOR {}\n\
         #define WSHANDLE_VERSION_PATCH {}\n#define WSHANDLE_VERSION \"{}\"",
        version("MAJOR"),
        version("MINOR"),
        version("PATCH"),
        env::var("CARGO_PKG_VERSION").expect("version"),
    ));
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header")
        .write_to_file(&out);
}
