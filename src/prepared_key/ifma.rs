//! Eight equation points `[s]B − [k]A` at once with AVX-512 IFMA.
//!
//! The same fixed-base sums as [`FixedBaseTable::accumulate`], one
//! signature per 64-bit lane of a 512-bit register: every lane takes one
//! table point per digit position (gathered by its own digit; a zero digit
//! gathers the identity) and adds it with the same seven-multiplication
//! mixed addition. Field elements are five radix-2^51 limbs per lane, as in
//! the scalar code; `vpmadd52luq`/`vpmadd52huq` multiply the low 52 bits of
//! two limbs and add the low or high 52 bits of the 104-bit product, so
//! every multiplication input must have limbs below 2^52. The bounds that
//! guarantee it are written at each operation; every result handed back is
//! carried below fiat-crypto's tight bound, so the scalar code takes over
//! from there (batch inversion, encoding, comparison with `R`).
//!
//! This is the only module of the crate with `unsafe` code, for three
//! reasons that the compiler cannot check: calling the AVX-512 functions
//! (only after [`available`] said the CPU has the instructions), gathering
//! table words (indices bounded by construction, checked once per step),
//! and storing a register into an array.

#![allow(unsafe_code)]

use std::arch::x86_64::{
    __m512i, __mmask8, _mm512_add_epi64, _mm512_and_si512, _mm512_i64gather_epi64,
    _mm512_madd52hi_epu64, _mm512_madd52lo_epu64, _mm512_mask_blend_epi64, _mm512_set_epi64,
    _mm512_set1_epi64, _mm512_setzero_si512, _mm512_slli_epi64, _mm512_srli_epi64,
    _mm512_storeu_epi64, _mm512_sub_epi64,
};

use super::field::Fe;
use super::{Extended, FixedBaseTable, signed_digits};

/// Signatures per register.
const LANES: usize = 8;

/// 64-bit words of one table point: `y + x`, `y − x`, `2d·x·y`, five
/// carried limbs each.
pub(super) const WORDS: usize = 15;

/// Whether this CPU can run [`equation_points`] (AVX-512 F and IFMA).
pub(super) fn available() -> bool {
    std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512ifma")
}

/// The words of one table point in the layout [`equation_points`] gathers.
pub(super) fn point_words(y_plus_x: &Fe, y_minus_x: &Fe, xy2d: &Fe) -> [u64; WORDS] {
    let mut words = [0u64; WORDS];
    for (part, limbs) in words
        .chunks_exact_mut(5)
        .zip([y_plus_x, y_minus_x, xy2d].map(Fe::limbs))
    {
        part.copy_from_slice(&limbs);
    }
    words
}

/// `[s]B − [k]A` for each `(s, k)` (canonical scalars, little-endian),
/// where `b` and `a` are tables with gather words ([`FixedBaseTable`]'s
/// `words`). Panics if [`available`] is false or a table has no words.
pub(super) fn equation_points(
    b: &FixedBaseTable,
    a: &FixedBaseTable,
    scalars: &[([u8; 32], [u8; 32])],
) -> Vec<Extended> {
    assert!(available(), "equation_points needs AVX-512 IFMA");
    assert!(
        b.words.len() == (b.points.len() + 1) * WORDS
            && a.words.len() == (a.points.len() + 1) * WORDS,
        "a table without gather words"
    );
    let mut out = Vec::with_capacity(scalars.len());
    for group in scalars.chunks(LANES) {
        // Lanes past the group's end keep zero digits (identity) and are dropped.
        let mut s_digits = [[0i16; 64]; LANES];
        let mut k_digits = [[0i16; 64]; LANES];
        for (lane, (s, k)) in group.iter().enumerate() {
            signed_digits(s, b.w, &mut s_digits[lane]);
            signed_digits(k, a.w, &mut k_digits[lane]);
        }
        // SAFETY: `available()` held above, so the CPU has every feature the
        // function is compiled for.
        let lanes = unsafe { accumulate(b, a, &s_digits, &k_digits) };
        out.extend(lanes.into_iter().take(group.len()));
    }
    out
}

/// Five radix-2^51 limbs of eight field elements.
#[derive(Clone, Copy)]
struct F8([__m512i; 5]);

/// Eight points in extended coordinates.
struct P8 {
    x: F8,
    y: F8,
    z: F8,
    t: F8,
}

/// Sums the fixed-base terms of eight signatures: lane `j` gets
/// `Σ_i T^B_i[s_j,i] − Σ_i T^A_i[k_j,i]`.
#[target_feature(enable = "avx512f,avx512ifma")]
fn accumulate(
    b: &FixedBaseTable,
    a: &FixedBaseTable,
    s_digits: &[[i16; 64]; LANES],
    k_digits: &[[i16; 64]; LANES],
) -> [Extended; LANES] {
    let zero = _mm512_setzero_si512();
    let one = F8([_mm512_set1_epi64(1), zero, zero, zero, zero]);
    let mut acc = P8 {
        x: F8([zero; 5]),
        y: one,
        z: one,
        t: F8([zero; 5]),
    };
    for i in 0..super::digit_count(b.w) {
        add_terms(&mut acc, b, i, s_digits, false);
    }
    for i in 0..super::digit_count(a.w) {
        add_terms(&mut acc, a, i, k_digits, true);
    }
    let [x, y, z, t] = [acc.x, acc.y, acc.z, acc.t].map(|c| lanes_of(&c));
    std::array::from_fn(|lane| Extended {
        x: Fe::from_limbs(x[lane]),
        y: Fe::from_limbs(y[lane]),
        z: Fe::from_limbs(z[lane]),
        t: Fe::from_limbs(t[lane]),
    })
}

/// Adds (or with `subtract`, subtracts) each lane's table point for its
/// digit at position `i`: the mixed addition of [`Extended::add_niels`].
#[target_feature(enable = "avx512f,avx512ifma")]
#[inline]
fn add_terms(
    acc: &mut P8,
    table: &FixedBaseTable,
    i: usize,
    digits: &[[i16; 64]; LANES],
    subtract: bool,
) {
    let identity = table.points.len();
    let mut index = [0i64; LANES];
    let mut negate: __mmask8 = 0;
    for lane in 0..LANES {
        let d = digits[lane][i];
        let point = if d == 0 {
            identity
        } else {
            i * table.half + (usize::from(d.unsigned_abs()).min(table.half) - 1)
        };
        // At most `points.len()`, the identity's slot: in bounds of `words`.
        index[lane] = (point.min(identity) * WORDS) as i64;
        if (d < 0) != subtract && d != 0 {
            negate |= 1 << lane;
        }
    }
    let offsets = _mm512_set_epi64(
        index[7], index[6], index[5], index[4], index[3], index[2], index[1], index[0],
    );
    let words = table.words.as_ptr().cast::<i64>();
    let gather = |word: i64| {
        // SAFETY: every offset is `point * WORDS` with `point ≤ points.len()`,
        // and `words` holds `(points.len() + 1) * WORDS` words (checked in
        // `equation_points`), so `offset + word < words.len()` for
        // `word < WORDS`.
        unsafe {
            _mm512_i64gather_epi64::<8>(_mm512_add_epi64(offsets, _mm512_set1_epi64(word)), words)
        }
    };
    let limbs = |first: i64| F8(std::array::from_fn(|l| gather(first + l as i64)));
    let (y_plus_x, y_minus_x, xy2d) = (limbs(0), limbs(5), limbs(10));
    // −q = (−x, y): y + x and y − x swap, 2d·x·y changes sign (below).
    let q_plus = blend(negate, &y_plus_x, &y_minus_x);
    let q_minus = blend(negate, &y_minus_x, &y_plus_x);

    let pp = mul(&add(&acc.y, &acc.x), &q_plus);
    let mm = mul(&sub(&acc.y, &acc.x), &q_minus);
    let txy2d = mul(&acc.t, &xy2d);
    let z2 = add(&acc.z, &acc.z);
    let (z2_plus, z2_minus) = (add(&z2, &txy2d), sub(&z2, &txy2d));
    let z = blend(negate, &z2_plus, &z2_minus);
    let t = blend(negate, &z2_minus, &z2_plus);
    let (e, h) = (sub(&pp, &mm), add(&pp, &mm));
    *acc = P8 {
        x: mul(&e, &t),
        y: mul(&h, &z),
        z: mul(&z, &t),
        t: mul(&e, &h),
    };
}

/// Per lane: `b` where `mask` is set, else `a`.
#[target_feature(enable = "avx512f")]
#[inline]
fn blend(mask: __mmask8, a: &F8, b: &F8) -> F8 {
    F8(std::array::from_fn(|l| {
        _mm512_mask_blend_epi64(mask, a.0[l], b.0[l])
    }))
}

const MASK_51: i64 = (1 << 51) - 1;

/// `19·x` (for `x < 2^59`).
#[target_feature(enable = "avx512f")]
#[inline]
fn times_19(x: __m512i) -> __m512i {
    _mm512_add_epi64(
        _mm512_add_epi64(x, _mm512_slli_epi64::<1>(x)),
        _mm512_slli_epi64::<4>(x),
    )
}

/// One carry step on every limb at once: limbs below 2^54 come out below
/// `2^51 + 19·8`.
#[target_feature(enable = "avx512f")]
#[inline]
fn carry_parallel(x: [__m512i; 5]) -> F8 {
    let mask = _mm512_set1_epi64(MASK_51);
    let c: [__m512i; 5] = std::array::from_fn(|l| _mm512_srli_epi64::<51>(x[l]));
    let low: [__m512i; 5] = std::array::from_fn(|l| _mm512_and_si512(x[l], mask));
    F8([
        _mm512_add_epi64(low[0], times_19(c[4])),
        _mm512_add_epi64(low[1], c[0]),
        _mm512_add_epi64(low[2], c[1]),
        _mm512_add_epi64(low[3], c[2]),
        _mm512_add_epi64(low[4], c[3]),
    ])
}

/// `a + b`, carried. Inputs below `2^51 + 2^15` per limb (every value
/// here), so the sum is below 2^53 and the result below `2^51 + 38`.
#[target_feature(enable = "avx512f")]
#[inline]
fn add(a: &F8, b: &F8) -> F8 {
    carry_parallel(std::array::from_fn(|l| _mm512_add_epi64(a.0[l], b.0[l])))
}

/// `a − b`, carried: `a + 2p − b` (2p's limbs exceed any `b` limb here,
/// which stay below `2^51 + 2^15`), below 2^53 per limb before the carry.
#[target_feature(enable = "avx512f")]
#[inline]
fn sub(a: &F8, b: &F8) -> F8 {
    let two_p = |l: usize| {
        _mm512_set1_epi64(if l == 0 {
            (1 << 52) - 38
        } else {
            (1 << 52) - 2
        })
    };
    carry_parallel(std::array::from_fn(|l| {
        _mm512_sub_epi64(_mm512_add_epi64(a.0[l], two_p(l)), b.0[l])
    }))
}

/// `a · b`. Inputs below 2^52 per limb. The 25 products are split by IFMA
/// into their low and high 52 bits; the high half of a product at limb
/// `k` weighs `2^(51k + 52)`, twice limb `k + 1`. Column sums stay below
/// `15 · 2^52`, the folded limbs (`2^255 ≡ 19`) below 2^61, and one carry
/// chain leaves limbs 1–4 below 2^51 and limb 0 below `2^51 + 2^15`: inside
/// fiat-crypto's tight bound, and valid multiplication inputs again.
#[target_feature(enable = "avx512f,avx512ifma")]
#[inline]
fn mul(a: &F8, b: &F8) -> F8 {
    let zero = _mm512_setzero_si512();
    let mut lo = [zero; 9];
    let mut hi = [zero; 9];
    for i in 0..5 {
        for j in 0..5 {
            lo[i + j] = _mm512_madd52lo_epu64(lo[i + j], a.0[i], b.0[j]);
            hi[i + j] = _mm512_madd52hi_epu64(hi[i + j], a.0[i], b.0[j]);
        }
    }
    let mut c = [zero; 10];
    c[0] = lo[0];
    for k in 1..9 {
        c[k] = _mm512_add_epi64(lo[k], _mm512_slli_epi64::<1>(hi[k - 1]));
    }
    c[9] = _mm512_slli_epi64::<1>(hi[8]);
    let mut r: [__m512i; 5] = std::array::from_fn(|k| _mm512_add_epi64(c[k], times_19(c[k + 5])));
    let mask = _mm512_set1_epi64(MASK_51);
    for k in 0..4 {
        r[k + 1] = _mm512_add_epi64(r[k + 1], _mm512_srli_epi64::<51>(r[k]));
        r[k] = _mm512_and_si512(r[k], mask);
    }
    let top = _mm512_srli_epi64::<51>(r[4]);
    r[4] = _mm512_and_si512(r[4], mask);
    r[0] = _mm512_add_epi64(r[0], times_19(top));
    F8(r)
}

/// The limbs of each lane of `value`, carried below 2^51 except limb 0
/// (below `2^51 + 2^15`; values here are multiplication results).
#[target_feature(enable = "avx512f")]
fn lanes_of(value: &F8) -> [[u64; 5]; LANES] {
    let mut limbs = [[0u64; LANES]; 5];
    for (limb, register) in limbs.iter_mut().zip(value.0) {
        // SAFETY: `limb` is 8 writable, contiguous u64 (64 bytes), the
        // size of one register; the store is unaligned.
        unsafe { _mm512_storeu_epi64(limb.as_mut_ptr().cast(), register) };
    }
    std::array::from_fn(|lane| std::array::from_fn(|limb| limbs[limb][lane]))
}
