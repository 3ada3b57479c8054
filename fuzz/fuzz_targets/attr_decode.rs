//! Attribute value decoders on arbitrary bytes: the sealed-item decoder and DynamoDB JSON.
//! Neither may panic; a decoded item must re-encode to exactly the input (canonical form),
//! and accepted JSON must survive a serialize/deserialize round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealdb::protocol::attr::{decode_item, encode_item, AttributeValue};

fuzz_target!(|data: &[u8]| {
    if let Ok(item) = decode_item(data) {
        let mut again = Vec::with_capacity(data.len());
        encode_item(&item, &mut again);
        assert_eq!(again, data, "decoded item does not re-encode to its input");
    }
    if let Ok(value) = serde_json::from_slice::<AttributeValue>(data) {
        let text = serde_json::to_vec(&value).expect("serializing a decoded value");
        let back: AttributeValue = serde_json::from_slice(&text).expect("re-reading own output");
        assert_eq!(back, value, "JSON round trip changed the value");
    }
});
