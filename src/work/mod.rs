pub mod addr;
pub mod mkwork;
pub mod model;
pub mod parse;
pub mod resolve;
