pub mod pathguard;
