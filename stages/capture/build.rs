//! Builds `src/capture.cpp` into a shared library linked against OpenCV's videoio, which
//! `src/lib.rs` embeds (`include_bytes!`) and opens at run time the first time a video needs it.
//! The library is not linked into anything: linking it, or videoio, would load videoio and its
//! hundred dependencies in every process again.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=src/capture.cpp");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let library = out.join("libdfd_capture.so");
    let compiler = cc::Build::new().cpp(true).get_compiler();
    let mut command = compiler.to_command();
    command
        .args(["-shared", "-fPIC", "-O2", "-std=c++11", "-Wall", "-Wextra"])
        .args(opencv_include_flags())
        .arg("src/capture.cpp")
        .arg("-o")
        .arg(&library)
        // Everything the library uses must resolve now, not when a video needs it.
        .args(["-Wl,--no-undefined", "-lopencv_videoio", "-lopencv_core"]);
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C++ compiler ({command:?}): {e}"));
    assert!(
        status.success(),
        "building {} failed: {command:?}",
        library.display()
    );
}

/// OpenCV's include directory, from pkg-config where it knows it (Debian's libopencv-dev).
fn opencv_include_flags() -> Vec<String> {
    let probed = Command::new("pkg-config")
        .args(["--cflags-only-I", "opencv4"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .filter(|flags| !flags.is_empty());
    probed.unwrap_or_else(|| vec!["-I/usr/include/opencv4".into()])
}
