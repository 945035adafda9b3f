//! One module per `dfd` subcommand.

pub mod bench;
pub mod csv_field;
pub mod dag;
pub mod evaluate;
pub mod export;
pub mod gc;
pub mod inspect;
pub mod predict;
pub mod report;
pub mod run;
pub mod status;
pub mod verify;
