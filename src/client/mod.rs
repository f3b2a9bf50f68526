pub mod fitness;
