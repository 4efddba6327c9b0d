//! TLS ClientHello parsing (SNI extraction, record reassembly).
#![no_main]

use cordon_net::inspect::inspect;
use cordon_net::parse::Parsed;
use cordon_net::sni::parse_client_hello;
use cordon_net::Host;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Parsed::Done(_, n)) = parse_client_hello(data) {
        assert!(n <= data.len());
    }
    let _ = inspect(data, &Host::Name("a.example".into()), 443);
});
