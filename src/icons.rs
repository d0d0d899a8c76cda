//! The app icons a phone puts on its home screen, drawn here (a white speech bubble on the brand green, as
//! `assets/static/icon.svg`) and encoded as PNG, since home screens want bitmaps. Pure; computed once per
//! size.

use std::io::Write;

const GREEN: [u8; 3] = [0x0b, 0x6e, 0x4f];
const WHITE: [u8; 3] = [0xff, 0xff, 0xff];
/// Samples per pixel side: 4 x 4 gives smooth edges.
const SAMPLES: u32 = 4;

/// How an icon fills its square.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Rounded corners and transparency outside them (browsers, Android).
    Rounded,
    /// The green to the edges with the bubble inside the middle 80 % ("maskable"; iOS rounds it itself).
    FullBleed,
}

/// The icons served: path name, size and shape.
pub const ICONS: [(&str, u32, Shape); 4] = [
    ("icon-192.png", 192, Shape::Rounded),
    ("icon-512.png", 512, Shape::Rounded),
    ("icon-maskable-512.png", 512, Shape::FullBleed),
    ("icon-180.png", 180, Shape::FullBleed),
];

/// Is (x, y) inside the rounded rectangle from (x0, y0) to (x1, y1) with corner radius r?
fn in_rounded(x: f32, y: f32, (x0, y0, x1, y1): (f32, f32, f32, f32), r: f32) -> bool {
    if x < x0 || x > x1 || y < y0 || y > y1 {
        return false;
    }
    let cx = x.clamp(x0 + r, x1 - r);
    let cy = y.clamp(y0 + r, y1 - r);
    (x - cx).powi(2) + (y - cy).powi(2) <= r * r
}

/// Is (x, y) inside the triangle a, b, c?
fn in_triangle(x: f32, y: f32, a: (f32, f32), b: (f32, f32), c: (f32, f32)) -> bool {
    let side = |p: (f32, f32), q: (f32, f32)| (q.0 - p.0) * (y - p.1) - (q.1 - p.1) * (x - p.0);
    let (d1, d2, d3) = (side(a, b), side(b, c), side(c, a));
    let negative = d1 < 0.0 || d2 < 0.0 || d3 < 0.0;
    let positive = d1 > 0.0 || d2 > 0.0 || d3 > 0.0;
    !(negative && positive)
}

/// The colour at (x, y) in icon units (0..32), or `None` outside the icon.
fn paint(x: f32, y: f32, shape: Shape) -> Option<[u8; 3]> {
    let background = match shape {
        Shape::Rounded => in_rounded(x, y, (0.0, 0.0, 32.0, 32.0), 7.0),
        Shape::FullBleed => true,
    };
    if !background {
        return None;
    }
    // The bubble of icon.svg, shrunk into the safe middle for full-bleed icons.
    let (x, y) = match shape {
        Shape::Rounded => (x, y),
        Shape::FullBleed => (16.0 + (x - 16.0) / 0.78, 16.0 + (y - 16.0) / 0.78),
    };
    let bubble = in_rounded(x, y, (6.0, 9.0, 26.0, 22.0), 2.0)
        || in_triangle(x, y, (10.0, 21.5), (15.0, 21.5), (10.0, 26.0));
    Some(if bubble { WHITE } else { GREEN })
}

/// RGBA pixels of a `size` x `size` icon.
fn pixels(size: u32, shape: Shape) -> Vec<u8> {
    let mut out = Vec::with_capacity((size * size * 4) as usize);
    #[allow(clippy::cast_precision_loss)]
    let scale = 32.0 / size as f32;
    for py in 0..size {
        for px in 0..size {
            let (mut sum, mut covered) = ([0u32; 3], 0u32);
            for sy in 0..SAMPLES {
                for sx in 0..SAMPLES {
                    #[allow(clippy::cast_precision_loss)]
                    let (x, y) = (
                        (px as f32 + (sx as f32 + 0.5) / SAMPLES as f32) * scale,
                        (py as f32 + (sy as f32 + 0.5) / SAMPLES as f32) * scale,
                    );
                    if let Some(rgb) = paint(x, y, shape) {
                        covered += 1;
                        for (s, c) in sum.iter_mut().zip(rgb) {
                            *s += u32::from(c);
                        }
                    }
                }
            }
            let all = SAMPLES * SAMPLES;
            #[allow(clippy::cast_possible_truncation)]
            let channel = |s: u32| s.checked_div(covered).unwrap_or(0) as u8;
            #[allow(clippy::cast_possible_truncation)]
            let alpha = (covered * 255 / all) as u8;
            out.extend_from_slice(&[channel(sum[0]), channel(sum[1]), channel(sum[2]), alpha]);
        }
    }
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

/// A PNG (8-bit RGBA, no filtering) of `size` x `size` pixels.
pub fn png(size: u32, shape: Shape) -> Vec<u8> {
    let rgba = pixels(size, shape);
    let mut raw = Vec::with_capacity(rgba.len() + size as usize);
    for row in rgba.chunks((size * 4) as usize) {
        raw.push(0);
        raw.extend_from_slice(row);
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = z.write_all(&raw);
    let idat = z.finish().unwrap_or_default();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&size.to_be_bytes());
    ihdr.extend_from_slice(&size.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &idat);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// The icon served under `name`, drawn on first request.
pub fn get(name: &str) -> Option<&'static [u8]> {
    static CACHE: std::sync::OnceLock<Vec<(&'static str, Vec<u8>)>> = std::sync::OnceLock::new();
    let all = CACHE.get_or_init(|| {
        ICONS
            .iter()
            .map(|(n, size, shape)| (*n, png(*size, *shape)))
            .collect()
    });
    all.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, data)| data.as_slice())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Read;

    #[test]
    fn icons_are_pngs_of_their_size_with_the_bubble_in_the_middle() {
        for (name, size, shape) in ICONS {
            let data = get(name).unwrap();
            assert_eq!(&data[..8], b"\x89PNG\r\n\x1a\n", "{name}");
            assert_eq!(&data[12..16], b"IHDR");
            assert_eq!(u32::from_be_bytes(data[16..20].try_into().unwrap()), size);
            assert_eq!(u32::from_be_bytes(data[20..24].try_into().unwrap()), size);
            // Decompress IDAT and read pixels back.
            let idat_len = u32::from_be_bytes(data[33..37].try_into().unwrap()) as usize;
            assert_eq!(&data[37..41], b"IDAT");
            let mut raw = vec![];
            flate2::read::ZlibDecoder::new(&data[41..41 + idat_len])
                .read_to_end(&mut raw)
                .unwrap();
            let row = (size * 4 + 1) as usize;
            assert_eq!(raw.len(), row * size as usize);
            let at = |x: u32, y: u32| {
                let i = y as usize * row + 1 + x as usize * 4;
                [raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]
            };
            // The middle is the white bubble; the top middle is green.
            assert_eq!(at(size / 2, size / 2), [255, 255, 255, 255], "{name}");
            assert_eq!(at(size / 2, size / 40), [0x0b, 0x6e, 0x4f, 255], "{name}");
            // Corners: transparent when rounded, green to the edge when full-bleed.
            let corner = at(0, 0);
            match shape {
                Shape::Rounded => assert_eq!(corner[3], 0, "{name}"),
                Shape::FullBleed => assert_eq!(corner, [0x0b, 0x6e, 0x4f, 255], "{name}"),
            }
        }
    }
}
