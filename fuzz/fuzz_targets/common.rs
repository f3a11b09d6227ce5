//! Shared input generators for the fuzz targets.

use arbitrary::Arbitrary;

/// An RFC 3339-shaped timestamp whose parts lean towards boundary values (first and last
/// year, month ends, leap days, the widest offsets), with out-of-range values mixed in.
#[derive(Arbitrary, Debug)]
pub struct Time {
    year: Part<u16>,
    month: Part<u8>,
    day: Part<u8>,
    hour: Part<u8>,
    minute: Part<u8>,
    second: Part<u8>,
    fraction: Option<u32>,
    offset: Option<(bool, Part<u8>, Part<u8>)>,
    lowercase: bool,
}

/// A boundary value (by index) or any value.
#[derive(Arbitrary, Debug)]
pub enum Part<T> {
    Edge(u8),
    Any(T),
}

fn pick(part: &Part<impl Copy + Into<u64>>, edges: &[u64], modulo: u64) -> u64 {
    match part {
        Part::Edge(i) => edges[usize::from(*i) % edges.len()],
        Part::Any(value) => (*value).into() % modulo,
    }
}

impl Time {
    /// The text, e.g. `9999-12-31T23:59:59.999-23:59`.
    pub fn text(&self) -> String {
        let year = pick(&self.year, &[0, 1, 1969, 1970, 2024, 2100, 9998, 9999], 10_000);
        let month = pick(&self.month, &[1, 2, 12, 0, 13], 100);
        let day = pick(&self.day, &[1, 28, 29, 30, 31, 0, 32], 100);
        let hour = pick(&self.hour, &[0, 23, 24], 100);
        let minute = pick(&self.minute, &[0, 59, 60], 100);
        let second = pick(&self.second, &[0, 59, 60, 61], 100);
        let mut text = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
        if let Some(fraction) = self.fraction {
            text.push_str(&format!(".{fraction}"));
        }
        match &self.offset {
            None => text.push('Z'),
            Some((negative, hours, minutes)) => {
                let hours = pick(hours, &[0, 1, 14, 23, 24], 100);
                let minutes = pick(minutes, &[0, 30, 59, 60], 100);
                text.push_str(&format!("{}{hours:02}:{minutes:02}", if *negative { '-' } else { '+' }));
            }
        }
        if self.lowercase {
            text = text.to_lowercase();
        }
        text
    }
}
