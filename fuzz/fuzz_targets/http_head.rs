//! HTTP request heads: parsing, the Host check and the first-bytes check.
#![no_main]

use cordon_net::httphead::{host_matches, parse_authority, parse_head};
use cordon_net::inspect::inspect;
use cordon_net::parse::Parsed;
use cordon_net::Host;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let want = Host::Name("a.example".into());
    if let Ok(Parsed::Done(head, n)) = parse_head(data) {
        assert!(n <= data.len());
        let _ = host_matches(&head, &want, 80);
    }
    let _ = inspect(data, &want, 80);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = parse_authority(s);
        let _ = cordon_net::parse_host(s);
    }
});
