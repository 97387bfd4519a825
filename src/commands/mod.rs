pub mod check;
pub mod hook;
