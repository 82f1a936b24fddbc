//! `gpp::decode` on an arbitrary GPP string, then the category mapping:
//! an error or a value that serialises, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagwatch_core::gpp;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    match gpp::decode(&input) {
        Ok(g) => {
            let _ = g.categories();
            let _ = g.categories_for(Some(&[2, 7, 8]));
            let _ = g.categories_for(None);
            let json = serde_json::to_string(&g).expect("a decoded GPP string serialises");
            serde_json::from_str::<serde_json::Value>(&json).expect("valid JSON");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
