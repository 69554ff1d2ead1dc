//! The `mdm-mail` binary; everything it does lives in the library.

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    mdm_mail::cli::main()
}
