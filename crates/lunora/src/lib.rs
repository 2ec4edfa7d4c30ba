//! The Lunora binary's library half: the command line ([`cli`]), configuration ([`config`]) and
//! the wiring that starts the database, the media engine and the servers ([`serve`]). It holds
//! no business logic of its own.

pub mod cli;
pub mod config;
pub mod serve;
