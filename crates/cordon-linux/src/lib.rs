pub fn _x(){}
pub mod pty;
