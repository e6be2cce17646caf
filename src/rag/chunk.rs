//! Splitting a document into overlapping chunks of at most `size` characters (Unicode scalar
//! values, not bytes), `overlap` characters shared by neighbours. A chunk ends at whitespace when
//! there is some in its second half, so words are rarely cut; each chunk is trimmed and empty
//! ones are dropped. Pure; table-tested.

/// The chunks of `text`. `size` ≥ 1 and `overlap` < `size` (checked at start-up).
pub fn chunks(text: &str, size: usize, overlap: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        let mut end = (start + size).min(chars.len());
        if end < chars.len() {
            // Back to the last whitespace in the window's second half, if any.
            let half = start + size / 2;
            if let Some(ws) = (half.max(start + 1)..end)
                .rev()
                .find(|&i| chars[i].is_whitespace())
            {
                end = ws;
            }
        }
        let piece: String = chars[start..end].iter().collect();
        let piece = piece.trim();
        if !piece.is_empty() {
            out.push(piece.to_string());
        }
        if end >= chars.len() {
            break;
        }
        // The next chunk starts `overlap` before this one's end, at a word start when near.
        let mut next = end.saturating_sub(overlap).max(start + 1);
        let limit = (next + overlap / 2).min(end);
        if let Some(w) = (next..limit).find(|&i| i > 0 && chars[i - 1].is_whitespace()) {
            next = w;
        }
        start = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::chunks;

    #[test]
    fn a_short_text_is_one_chunk_and_blank_text_none() {
        assert_eq!(chunks("  hello world ", 400, 100), vec!["hello world"]);
        assert!(chunks("   \n ", 400, 100).is_empty());
        assert!(chunks("", 400, 100).is_empty());
    }

    #[test]
    fn chunks_are_bounded_overlap_and_cover_every_word() {
        let words: Vec<String> = (0..300).map(|i| format!("w{i}")).collect();
        let text = words.join(" ");
        let cs = chunks(&text, 100, 30);
        assert!(cs.len() > 5);
        for c in &cs {
            assert!(c.chars().count() <= 100, "{c}");
        }
        for w in &words {
            let token = |c: &String| c.split(' ').any(|t| t == w);
            assert!(cs.iter().any(token), "{w} is in some chunk");
        }
        // Neighbours share text (the overlap) and no word is cut in two.
        for pair in cs.windows(2) {
            let last = pair[0].split(' ').next_back().unwrap();
            assert!(pair[1].contains(last), "{:?}", pair);
            assert!(pair[1].starts_with('w'), "{:?}", pair[1]);
        }
    }

    #[test]
    fn sizes_count_characters_not_bytes_and_text_without_spaces_is_cut() {
        let text = "żółć".repeat(50); // 200 characters, 400+ bytes
        let cs = chunks(&text, 80, 20);
        assert!(cs.iter().all(|c| c.chars().count() <= 80));
        assert_eq!(cs[0].chars().count(), 80);
        // 0..80, 60..140, 120..200
        assert_eq!(cs.len(), 3);
    }

    #[test]
    fn progress_is_made_even_with_the_largest_overlap() {
        let cs = chunks(&"x".repeat(50), 10, 9);
        assert!(cs.len() >= 5 && cs.len() <= 50);
    }
}
