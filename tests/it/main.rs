//! Integration tests: one binary, a shared support module (hickory-dns style).
//! They start the real `hotline-gw` and talk to it over loopback sockets.

mod acd;
mod agent_life;
mod callbacks;
mod caller_summary;
mod calls;
mod cluster;
mod conference;
mod corpus;
mod dialplan;
mod grafana;
mod interop;
mod kamailio;
mod media;
mod openapi;
mod reports;
mod reports_stored;
mod security;
mod sla;
mod support;
mod tcp;
mod tickets;
mod wallboard;
