//! Separable resizing on the host, NCHW f32, forward and backward, with the taps of
//! [`crate::ops::resize`] (PyTorch's `interpolate` index and weight rules).
//!
//! Each `H × W` plane is resampled along `W` into a `H × OW` scratch plane, then along `H`
//! into the output, reading whole rows so the inner loops run over contiguous columns. The
//! generic path gathers with `select` per tap and axis (an index tensor, a full-size copy and
//! a broadcast multiply each), and its backward scatter-adds the same way. Sums run in the
//! generic path's order (tap 0, then + tap 1, …), so the forward is bitwise the same.
//! Planes are spread over rayon's pool.

use rayon::prelude::*;

/// The taps of one axis: for every output index, `taps` source indices and weights (weight
/// 1 for nearest modes). `None` where the axis is copied unchanged.
#[derive(Debug, Clone)]
pub(crate) struct AxisTaps {
    pub len_out: usize,
    /// `[taps][len_out]` source indices.
    pub index: Vec<Vec<usize>>,
    /// `[taps][len_out]` weights; `None`: every weight is 1 (nearest modes).
    pub weight: Option<Vec<Vec<f32>>>,
}

impl AxisTaps {
    fn weight(&self, t: usize, o: usize) -> f32 {
        self.weight.as_ref().map_or(1.0, |w| w[t][o])
    }
}

/// `[planes, H, W]` → `[planes, OH, OW]`; `None` taps keep that axis.
pub(crate) fn forward(
    x: &[f32],
    h: usize,
    w: usize,
    rows: Option<&AxisTaps>,
    cols: Option<&AxisTaps>,
) -> Vec<f32> {
    let oh = rows.map_or(h, |t| t.len_out);
    let ow = cols.map_or(w, |t| t.len_out);
    let mut out = vec![0.0f32; x.len() / (h * w) * oh * ow];
    out.par_chunks_mut(oh * ow)
        .zip(x.par_chunks(h * w))
        .for_each_init(
            || vec![0.0f32; h * ow],
            |tmp, (dst, src)| {
                let mid: &[f32] = match cols {
                    Some(cols) => {
                        for (row, src_row) in tmp.chunks_mut(ow).zip(src.chunks(w)) {
                            resample_row(src_row, cols, row);
                        }
                        tmp
                    }
                    None => src,
                };
                match rows {
                    Some(rows) => {
                        for (o, dst_row) in dst.chunks_mut(ow).enumerate() {
                            for t in 0..rows.index.len() {
                                let s = rows.index[t][o];
                                let src_row = &mid[s * ow..(s + 1) * ow];
                                let wt = rows.weight(t, o);
                                if t == 0 {
                                    match rows.weight {
                                        Some(_) => dst_row
                                            .iter_mut()
                                            .zip(src_row)
                                            .for_each(|(d, &v)| *d = v * wt),
                                        None => dst_row.copy_from_slice(src_row),
                                    }
                                } else {
                                    dst_row
                                        .iter_mut()
                                        .zip(src_row)
                                        .for_each(|(d, &v)| *d += v * wt);
                                }
                            }
                        }
                    }
                    None => dst.copy_from_slice(mid),
                }
            },
        );
    out
}

/// One row along its axis: `dst[o] = Σ_t src[index[t][o]] · weight[t][o]`, in tap order.
fn resample_row(src: &[f32], taps: &AxisTaps, dst: &mut [f32]) {
    match &taps.weight {
        None => {
            for (d, &s) in dst.iter_mut().zip(&taps.index[0]) {
                *d = src[s];
            }
        }
        Some(weight) => {
            for (o, d) in dst.iter_mut().enumerate() {
                let mut acc = src[taps.index[0][o]] * weight[0][o];
                for t in 1..taps.index.len() {
                    acc += src[taps.index[t][o]] * weight[t][o];
                }
                *d = acc;
            }
        }
    }
}

/// Adjoint of [`forward`]: `[planes, OH, OW]` gradient → `[planes, H, W]`.
pub(crate) fn backward(
    dy: &[f32],
    h: usize,
    w: usize,
    rows: Option<&AxisTaps>,
    cols: Option<&AxisTaps>,
) -> Vec<f32> {
    let oh = rows.map_or(h, |t| t.len_out);
    let ow = cols.map_or(w, |t| t.len_out);
    let mut dx = vec![0.0f32; dy.len() / (oh * ow) * h * w];
    dx.par_chunks_mut(h * w)
        .zip(dy.par_chunks(oh * ow))
        .for_each_init(
            || vec![0.0f32; h * ow],
            |dmid, (dst, src)| {
                // Rows: dmid[index[t][o]] += weight[t][o] · dy[o].
                let dmid: &[f32] = match rows {
                    Some(rows) => {
                        dmid.fill(0.0);
                        for (o, dy_row) in src.chunks(ow).enumerate() {
                            for t in 0..rows.index.len() {
                                let s = rows.index[t][o];
                                let wt = rows.weight(t, o);
                                dmid[s * ow..(s + 1) * ow]
                                    .iter_mut()
                                    .zip(dy_row)
                                    .for_each(|(d, &g)| *d += g * wt);
                            }
                        }
                        dmid
                    }
                    None => src,
                };
                match cols {
                    Some(cols) => {
                        dst.fill(0.0);
                        for (dst_row, g_row) in dst.chunks_mut(w).zip(dmid.chunks(ow)) {
                            for t in 0..cols.index.len() {
                                for (o, &g) in g_row.iter().enumerate() {
                                    dst_row[cols.index[t][o]] += g * cols.weight(t, o);
                                }
                            }
                        }
                    }
                    None => dst.copy_from_slice(dmid),
                }
            },
        );
    dx
}
