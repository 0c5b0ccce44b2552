//! The schema loader's nesting pre-scan (mycelium-protocol schema/nesting.rs) against
//! libyaml's own scanner, which it mirrors: libyaml's tokens say how deep it nests (block
//! collection starts and ends, flow collection starts and ends). If the pre-scan counted less
//! than libyaml nests, hostile text could slip past it into libyaml's quadratic path; if it
//! counted more, valid schemas could be refused.
//!
//! libyaml emits the block mapping start of a simple key (`[a]: b`) before the key's tokens,
//! though it opens it only at the `:`, so its token order can be one level deeper than the
//! nesting it actually holds at once; the pre-scan follows the time order. Hence: libyaml's
//! token depth is at most the scan's + 1, and when libyaml scans the whole text without an
//! error, the scan's depth is at most libyaml's (past a libyaml error the scan goes on alone).

#![no_main]

use std::mem::MaybeUninit;

use libfuzzer_sys::fuzz_target;
use mycelium_protocol::schema::nesting_depth;
use unsafe_libyaml as sys;

/// The deepest nesting in libyaml's token stream, and whether it reached the stream's end
/// without an error.
fn libyaml_depth(text: &str) -> (usize, bool) {
    let mut parser = Box::new(MaybeUninit::<sys::yaml_parser_t>::uninit());
    let parser = parser.as_mut_ptr();
    let (mut block, mut flow, mut max) = (0usize, 0usize, 0usize);
    let clean;
    // SAFETY: the parser is initialised before use and deleted once at the end; it lives in
    // a Box so the pointer libyaml keeps to it (its read handler's data) stays valid; `text`
    // outlives the parser; each token is deleted after it is read, as libyaml requires.
    unsafe {
        assert!(sys::yaml_parser_initialize(parser).ok);
        // As serde_yaml_ng sets it up.
        sys::yaml_parser_set_encoding(parser, sys::YAML_UTF8_ENCODING);
        sys::yaml_parser_set_input_string(parser, text.as_ptr(), text.len() as u64);
        loop {
            let mut token = MaybeUninit::<sys::yaml_token_t>::uninit();
            if sys::yaml_parser_scan(parser, token.as_mut_ptr()).fail {
                clean = false;
                break;
            }
            let token = token.as_mut_ptr();
            let kind = (*token).type_;
            sys::yaml_token_delete(token);
            match kind {
                sys::YAML_BLOCK_SEQUENCE_START_TOKEN | sys::YAML_BLOCK_MAPPING_START_TOKEN => {
                    block += 1
                }
                sys::YAML_BLOCK_END_TOKEN => block = block.saturating_sub(1),
                sys::YAML_FLOW_SEQUENCE_START_TOKEN | sys::YAML_FLOW_MAPPING_START_TOKEN => {
                    flow += 1
                }
                sys::YAML_FLOW_SEQUENCE_END_TOKEN | sys::YAML_FLOW_MAPPING_END_TOKEN => {
                    flow = flow.saturating_sub(1)
                }
                sys::YAML_STREAM_END_TOKEN | sys::YAML_NO_TOKEN => {
                    clean = true;
                    break;
                }
                _ => {}
            }
            max = max.max(block + flow);
        }
        sys::yaml_parser_delete(parser);
    }
    (max, clean)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ours = nesting_depth(text);
    let (theirs, clean) = libyaml_depth(text);
    assert!(
        theirs <= ours + 1,
        "libyaml nests {theirs} deep, the pre-scan counted only {ours}"
    );
    if clean {
        assert!(
            ours <= theirs,
            "the pre-scan counted {ours}, libyaml nests only {theirs}"
        );
    }
});
