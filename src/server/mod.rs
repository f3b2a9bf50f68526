pub mod db;
pub mod detector;
