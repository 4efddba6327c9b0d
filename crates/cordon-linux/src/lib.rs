pub fn _x(){}
pub mod pathguard;
