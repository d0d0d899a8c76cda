//! Links the `textback` binary with packed relative relocations (DT_RELR) when the C library it is built
//! against can load them (glibc 2.36 and later, which define the `GLIBC_ABI_DT_RELR` version that such a
//! binary requires). The binary's ~13,000 relocations then take 4 KB instead of 320 KB, which the loader
//! reads at every start. On an older glibc, or when cross-compiling, the binary is linked as before: a
//! packed binary would not start there.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let host = std::env::var("HOST").unwrap_or_default();
    if target == host && target.ends_with("-linux-gnu") && glibc_loads_relr() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the glibc this build script runs on (on a native build, the one the binary links against)
/// defines `GLIBC_ABI_DT_RELR`.
fn glibc_loads_relr() -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let Some(libc) = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.ends_with("/libc.so.6"))
    else {
        return false;
    };
    let needle = b"GLIBC_ABI_DT_RELR";
    std::fs::read(libc).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
}
