//! Compiles the C half of the crate (`src/codecs.c`) and links the system's libpng, libjpeg and
//! zlib: the libraries OpenCV's imgcodecs itself calls, so that the bytes are OpenCV's.

fn main() {
    println!("cargo:rerun-if-changed=src/codecs.c");
    cc::Build::new()
        .file("src/codecs.c")
        .opt_level(2)
        .warnings(true)
        .extra_warnings(true)
        .compile("dfd_codecs");
    for library in ["png16", "jpeg", "z"] {
        println!("cargo:rustc-link-lib=dylib={library}");
    }
}
