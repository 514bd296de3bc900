//! Splitting loops over many customers across the cores with
//! `std::thread::scope`. Work is cut into chunks whose boundaries depend only
//! on the input size, never on the number of cores, and partial results are
//! combined in chunk order, so results are bit-for-bit the same on every
//! machine.

use std::ops::Range;
use std::sync::OnceLock;

/// The threads to use: the available parallelism, at most 8.
pub(crate) fn threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(8)))
}

/// `f` over the chunks `0..chunk`, `chunk..2·chunk`, … of `0..n`, in
/// parallel when there is more than one chunk; results in chunk order.
pub(crate) fn map_chunks<R: Send>(
    n: usize,
    chunk: usize,
    f: impl Fn(Range<usize>) -> R + Sync,
) -> Vec<R> {
    let chunk = chunk.max(1);
    let count = n.div_ceil(chunk);
    let range = |c: usize| c * chunk..((c + 1) * chunk).min(n);
    let workers = threads().min(count);
    if workers <= 1 {
        return (0..count).map(|c| f(range(c))).collect();
    }
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (1..workers)
            .map(|w| {
                let chunks = w * count / workers..(w + 1) * count / workers;
                scope.spawn(move || chunks.map(|c| f(range(c))).collect::<Vec<R>>())
            })
            .collect();
        let mut out: Vec<R> = (0..count / workers).map(|c| f(range(c))).collect();
        for handle in handles {
            out.extend(handle.join().expect("an analytics worker thread panicked"));
        }
        out
    })
}

/// Calls `f(offset, part)` on consecutive parts of `out` (at most `chunk`
/// items each, `offset` being the index of the part's first item), in
/// parallel when there is more than one part.
pub(crate) fn fill_chunks<T: Send>(
    out: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let chunk = chunk.max(1);
    let count = out.len().div_ceil(chunk);
    let workers = threads().min(count);
    if workers <= 1 {
        for (c, part) in out.chunks_mut(chunk).enumerate() {
            f(c * chunk, part);
        }
        return;
    }
    let f = &f;
    // Contiguous runs of whole chunks, one per worker.
    let per_worker = count.div_ceil(workers) * chunk;
    std::thread::scope(|scope| {
        for (w, run) in out.chunks_mut(per_worker).enumerate() {
            scope.spawn(move || {
                for (c, part) in run.chunks_mut(chunk).enumerate() {
                    f(w * per_worker + c * chunk, part);
                }
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_range_in_order() {
        let parts = map_chunks(10, 3, |r| r);
        assert_eq!(parts, vec![0..3, 3..6, 6..9, 9..10]);
        assert!(map_chunks(0, 3, |r| r).is_empty());
    }

    #[test]
    fn fill_writes_every_item_with_its_index() {
        let mut out = vec![0usize; 100_003];
        fill_chunks(&mut out, 1000, |offset, part| {
            for (i, v) in part.iter_mut().enumerate() {
                *v = offset + i;
            }
        });
        assert!(out.iter().enumerate().all(|(i, &v)| i == v));
    }
}
