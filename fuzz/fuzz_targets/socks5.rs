//! SOCKS5 greeting and request parsing.
#![no_main]

use cordon_net::parse::Parsed;
use cordon_net::socks::{parse_greeting, parse_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Parsed::Done(_, n)) = parse_greeting(data) {
        assert!(n <= data.len());
        let _ = parse_request(&data[n..]);
    }
    if let Ok(Parsed::Done(_, n)) = parse_request(data) {
        assert!(n <= data.len());
    }
});
