//! The `mdm-mail` binary; everything it does lives in the library.

fn main() -> std::process::ExitCode {
    mdm_mail::cli::main()
}
