//! `cordon shell`: placeholder, filled in below.
pub fn shell(_args: crate::cli::ShellArgs) -> i32 {
    crate::EXIT_CORDON
}
