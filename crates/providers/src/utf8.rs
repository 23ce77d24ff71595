//! The UTF-8 check of wire bytes (every stream event, every JSON body), done with SIMD: for a stream event of
//! a few hundred ASCII bytes it is a fraction of the standard library's check.

/// `bytes` as text, when they are UTF-8.
pub(crate) fn text(bytes: &[u8]) -> Option<&str> {
    simdutf8::basic::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        /// Whatever the bytes, the answer is the standard library's.
        #[test]
        fn agrees_with_the_standard_check(bytes in proptest::collection::vec(any::<u8>(), 0..300), text in ".{0,100}") {
            prop_assert_eq!(super::text(&bytes), std::str::from_utf8(&bytes).ok());
            prop_assert_eq!(super::text(text.as_bytes()), Some(text.as_str()));
        }
    }
}
