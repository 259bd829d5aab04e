//! The user tile image: a person placeholder (head and shoulders on grey), drawn in code so
//! the DLL carries no image file.

/// Its width and height in pixels.
pub const SIZE: usize = 128;

/// The placeholder as 32-bit BGRA pixels, top row first (what `CreateBitmap` takes).
pub fn person_placeholder() -> Vec<u32> {
    const BACKGROUND: u32 = 0xFF5B_6B7A;
    const FIGURE: u32 = 0xFFD9_DEE3;
    let s = SIZE as f32;
    let mut pixels = Vec::with_capacity(SIZE * SIZE);
    for y in 0..SIZE {
        for x in 0..SIZE {
            let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
            // Head: a circle in the upper half.
            let (hx, hy, hr) = (s * 0.5, s * 0.38, s * 0.18);
            let head = (fx - hx).powi(2) + (fy - hy).powi(2) <= hr * hr;
            // Shoulders: the top of an ellipse rising from the bottom edge.
            let (sx, sy, rx, ry) = (s * 0.5, s * 1.02, s * 0.38, s * 0.36);
            let shoulders = ((fx - sx) / rx).powi(2) + ((fy - sy) / ry).powi(2) <= 1.0;
            pixels.push(if head || shoulders {
                FIGURE
            } else {
                BACKGROUND
            });
        }
    }
    pixels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_above_shoulders_on_a_background() {
        let p = person_placeholder();
        assert_eq!(p.len(), SIZE * SIZE);
        let at = |x: usize, y: usize| p[y * SIZE + x];
        let (bg, fig) = (at(0, 0), at(SIZE / 2, SIZE * 38 / 100));
        assert_ne!(bg, fig);
        assert_eq!(at(SIZE / 2, SIZE - 1), fig, "shoulders at the bottom");
        assert_eq!(at(SIZE / 2, SIZE * 62 / 100), bg, "a neck gap between them");
        assert_eq!(at(SIZE - 1, SIZE / 2), bg);
    }
}
