//! `tcf::decode` on an arbitrary TC string: an error or a value that
//! serialises, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagwatch_core::tcf;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    match tcf::decode(&input) {
        Ok(tc) => {
            let _ = tc.created.iso8601();
            let _ = tc.last_updated.iso8601();
            let _ = tc.created.as_millis();
            for set in [&tc.vendor_consents, &tc.vendor_legitimate_interests, &tc.purpose_consents] {
                assert_eq!(set.iter().count(), set.len());
            }
            let json = serde_json::to_string(&tc).expect("a decoded TC string serialises");
            serde_json::from_str::<serde_json::Value>(&json).expect("valid JSON");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
