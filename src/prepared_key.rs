//! Strict Ed25519 verification of many signatures by one public key (a
//! screen's proof-of-play upload), faster than checking each on its own.
//!
//! # What is checked
//!
//! [`PreparedKey::verify_strict`] and [`PreparedKey::verify_strict_batch`]
//! make exactly the decision of `ed25519_dalek::VerifyingKey::verify_strict`
//! (ed25519-dalek 2.2, without the `legacy_compatibility` feature) for every
//! signature:
//!
//! 1. `s` must be a canonical scalar (`s < ℓ`), else reject;
//! 2. the public key `A` must not be of small order, else reject;
//! 3. `k = SHA-512(R_bytes ‖ A_bytes ‖ M) mod ℓ`;
//! 4. `E = [s]B − [k]A`;
//! 5. accept iff `compress(E) == R_bytes` **and** `E` is not of small order.
//!
//! Dalek additionally rejects when `R_bytes` does not decompress or when the
//! decompressed `R` has small order.  Both checks are implied by step 5: a
//! byte string equal to `compress(E)` is a canonical encoding of the curve
//! point `E`, so it decompresses to `E`, and then "`R` small order" is the
//! same as "`E` small order".  Conversely, if `compress(E) != R_bytes` dalek
//! rejects as well (its final comparison is the same byte comparison).
//! Hence the decisions coincide for every input.  Once `compress(E) ==
//! R_bytes` holds, "`E` small order" is "`R_bytes` is the encoding of one of
//! the eight small-order points", a comparison with eight byte strings.
//!
//! # How it is faster
//!
//! Dalek computes `[s]B − [k]A` with a double-and-add loop: about 253 point
//! doublings plus ~80 additions for each signature, then one field inversion
//! to compress the result.  Here both `B` (once per process) and `A` (once
//! per key) are *fixed bases*, so we precompute, for each digit position `i`
//! of a radix-`2^w` expansion, the multiples `j · 2^(w·i) · P` for
//! `j = 1 ..= 2^(w−1)`, in affine "Niels" form `(y + x, y − x, 2d·x·y)`.
//!
//! A canonical scalar `x < 2^253` is recoded into signed digits
//! `d_i ∈ [−2^(w−1), 2^(w−1)]` with `x = Σ d_i 2^(w·i)` (take `w` bits, and if
//! the value is `≥ 2^(w−1)` subtract `2^w` and carry one into the next
//! digit).  Then `[x]P = Σ sign(d_i) · T_i[|d_i|]`, i.e. one table lookup and
//! one mixed addition (7 field multiplications) per non-zero digit and **no
//! doublings**.  `E` is accumulated as `Σ_i ±T^B_i[|s_i|] ∓ Σ_i T^A_i[|k_i|]`
//! in extended coordinates, and the `Z` coordinates of a whole batch are
//! inverted together (Montgomery's trick: one inversion and three
//! multiplications per signature instead of one inversion each).
//!
//! Curve25519-dalek keeps its coordinates and mixed additions private, so
//! the field arithmetic is fiat-crypto's formally verified `curve25519_64`
//! (the same code dalek's `fiat` backend uses); the point formulas are the
//! ones dalek uses for the same curve.  Dalek remains the reference: the
//! tests compare every decision, valid and crafted, with its
//! `verify_strict`, and the tables with its scalar multiplication.
//!
//! Everything handled here is public (signatures, keys, messages), so the
//! table lookups index directly by the digit value (variable time); this
//! would be unacceptable for secret scalars but is fine for verification,
//! exactly as dalek's own `vartime_double_scalar_mul_basepoint`.
//!
//! On CPUs with AVX-512 IFMA (Intel Ice Lake and later servers, AMD Zen 4
//! and later) the sums of eight signatures run side by side, one per lane
//! of a 512-bit register (the `ifma` submodule, the crate's only `unsafe`
//! code); elsewhere, and in the tests as a second engine, one signature at
//! a time on fiat-crypto.  Both engines feed the same inversion, encoding
//! and comparison, and the tests hold every decision of each to dalek's.
//!
//! Sizes: the basepoint table uses `w = 8` (32 positions × 128 points of
//! 120 bytes, 480 KiB, built once per process); the per-key table uses
//! `w = 6` (43 positions × 32 points, 161 KiB: 1376 point additions and a
//! batch inversion); with IFMA each table holds its points a second time as
//! gather words.  A verification then costs 32 + 43 mixed additions, a
//! share of one batch inversion, SHA-512 and two byte encodings.  Measured
//! on the 2-core x86-64 development box (AMD EPYC, Zen 4; release build,
//! best of 15 runs of 2000 valid signatures in batches of 32): 3.6 µs per
//! signature with IFMA, 11.1 µs on the scalar engine, 37.5 µs for dalek's
//! `verify_strict` (its AVX2 backend); 0.6 ms to build a key's table.  The
//! windows of 7 and 5 bits used before cost 4.1 and 12.5 µs per signature
//! (0.37 ms per key table); a 7-bit key window would save another 0.2 µs
//! but take 1.05 ms to build, which a fleet of boxes that each upload a
//! few hundred records after an outage would not earn back; a 10-bit
//! basepoint window (3.3 µs per signature with a 7-bit key window) made
//! the SQLite ingest benchmark slower, its 3 MiB table competing with the
//! database for the caches.  The table build does not pay off for tiny
//! batches: for fewer than about 16 signatures per key, plain
//! `VerifyingKey::verify_strict` is faster.

use curve25519_dalek::constants::{ED25519_BASEPOINT_COMPRESSED, EIGHT_TORSION};
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};
use std::sync::OnceLock;

use field::{Fe, Loose};

#[cfg(target_arch = "x86_64")]
mod ifma;

/// How the sums `[s]B − [k]A` of a batch are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    /// One signature at a time, 64-bit scalar arithmetic.
    Scalar,
    /// Eight signatures at a time in AVX-512 IFMA registers.
    #[cfg(target_arch = "x86_64")]
    Ifma,
}

/// Which engine checks signatures on this CPU, in words (benchmarks print
/// it: the AVX-512 IFMA engine checks about three times as fast).
pub fn engine_description() -> &'static str {
    match Engine::best() {
        #[cfg(target_arch = "x86_64")]
        Engine::Scalar if ifma::available() => {
            "64-bit scalar engine, chosen although this CPU has AVX-512 IFMA"
        }
        Engine::Scalar => "64-bit scalar engine (this CPU has no AVX-512 IFMA)",
        #[cfg(target_arch = "x86_64")]
        Engine::Ifma => "AVX-512 IFMA engine, 8 signatures at a time",
    }
}

/// Makes this process check signatures on the 64-bit scalar engine, as a
/// CPU without AVX-512 IFMA does (for benchmarks). Has no effect once a
/// signature was checked; says whether it took effect.
pub fn use_scalar_engine() -> bool {
    ENGINE.set(Engine::Scalar).is_ok()
}

/// The engine of this process, chosen once.
static ENGINE: OnceLock<Engine> = OnceLock::new();

impl Engine {
    /// The fastest engine this CPU runs (asked once), unless
    /// [`use_scalar_engine`] chose the scalar one first.
    fn best() -> Engine {
        *ENGINE.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            if ifma::available() {
                return Engine::Ifma;
            }
            Engine::Scalar
        })
    }
}

/// Window width (bits per signed digit) of the process-wide basepoint table.
pub(crate) const W_BASE: usize = 8;
/// Window width (bits per signed digit) of the per-key table.
pub(crate) const W_KEY: usize = 6;

/// Number of signed radix-`2^w` digits needed for a scalar `< 2^253`.
///
/// With `n = ceil(254 / w)` the top digit covers at most `w − 1` bits of the
/// scalar, so even after receiving a carry it is `≤ 2^(w−1)` and needs no
/// further carry.
pub(crate) const fn digit_count(w: usize) -> usize {
    254usize.div_ceil(w)
}

/// Recodes a canonical scalar (little-endian bytes, value `< 2^253`) into
/// `digit_count(w)` signed digits `d_i ∈ [−2^(w−1), 2^(w−1)]` such that
/// `x = Σ d_i · 2^(w·i)`.  Digits are written to `out[..digit_count(w)]`.
pub(crate) fn signed_digits(bytes: &[u8; 32], w: usize, out: &mut [i16]) {
    debug_assert!((2..=15).contains(&w));
    debug_assert!(bytes[31] < 0x20, "scalar must be < 2^253");
    let n = digit_count(w);
    let half = 1i32 << (w - 1);
    let mask = (1u32 << w) - 1;
    let mut carry = 0i32;
    for (i, d) in out.iter_mut().enumerate().take(n) {
        // Extract bits [w*i, w*i + w) (bits beyond 255 read as zero).
        let bit = w * i;
        let byte = bit / 8;
        let mut v: u32 = 0;
        for k in 0..3 {
            if byte + k < 32 {
                v |= (bytes[byte + k] as u32) << (8 * k);
            }
        }
        let mut digit = ((v >> (bit % 8)) & mask) as i32 + carry;
        if i + 1 < n && digit > half - 1 {
            // Values in [2^(w-1), 2^w] become negative with a carry; keeping
            // 2^(w-1) positive would also be allowed but this is simpler.
            digit -= 1 << w;
            carry = 1;
        } else {
            carry = 0;
        }
        debug_assert!(digit >= -half && digit <= half);
        *d = digit as i16;
    }
    debug_assert_eq!(carry, 0);
}

/// Arithmetic in GF(2^255 − 19) over fiat-crypto's `curve25519_64`
/// (radix 2^51; "tight" elements are carried, "loose" ones are sums or
/// differences that can still be multiplied).
mod field {
    use fiat_crypto::curve25519_64 as fiat;

    /// A carried field element.
    #[derive(Clone, Copy)]
    pub(super) struct Fe(fiat::fiat_25519_tight_field_element);

    /// A sum or difference of carried elements, ready to multiply.
    #[derive(Clone, Copy)]
    pub(super) struct Loose(fiat::fiat_25519_loose_field_element);

    impl Fe {
        pub(super) const ZERO: Fe = Fe(fiat::fiat_25519_tight_field_element([0; 5]));
        pub(super) const ONE: Fe = Fe(fiat::fiat_25519_tight_field_element([1, 0, 0, 0, 0]));

        /// The element with these radix-2^51 limbs (each below 2^51).
        pub(super) const fn from_limbs(limbs: [u64; 5]) -> Fe {
            Fe(fiat::fiat_25519_tight_field_element(limbs))
        }

        /// The radix-2^51 limbs.
        #[cfg(target_arch = "x86_64")]
        pub(super) fn limbs(&self) -> [u64; 5] {
            self.0.0
        }

        /// The element whose little-endian encoding is `bytes` with bit 255
        /// ignored (values `≥ p` are reduced).
        pub(super) fn from_bytes(bytes: &[u8; 32]) -> Fe {
            let mut clear = *bytes;
            clear[31] &= 0x7f;
            let mut out = fiat::fiat_25519_tight_field_element([0; 5]);
            fiat::fiat_25519_from_bytes(&mut out, &clear);
            Fe(out)
        }

        /// The canonical little-endian encoding (`< p`).
        #[inline(always)]
        pub(super) fn to_bytes(self) -> [u8; 32] {
            let mut out = [0u8; 32];
            fiat::fiat_25519_to_bytes(&mut out, &self.0);
            out
        }

        #[inline(always)]
        pub(super) fn relax(self) -> Loose {
            let mut out = fiat::fiat_25519_loose_field_element([0; 5]);
            fiat::fiat_25519_relax(&mut out, &self.0);
            Loose(out)
        }

        #[inline(always)]
        pub(super) fn add(&self, other: &Fe) -> Loose {
            let mut out = fiat::fiat_25519_loose_field_element([0; 5]);
            fiat::fiat_25519_add(&mut out, &self.0, &other.0);
            Loose(out)
        }

        #[inline(always)]
        pub(super) fn sub(&self, other: &Fe) -> Loose {
            let mut out = fiat::fiat_25519_loose_field_element([0; 5]);
            fiat::fiat_25519_sub(&mut out, &self.0, &other.0);
            Loose(out)
        }

        #[inline(always)]
        pub(super) fn neg(&self) -> Fe {
            let mut out = fiat::fiat_25519_loose_field_element([0; 5]);
            fiat::fiat_25519_opp(&mut out, &self.0);
            Loose(out).carry()
        }

        #[inline(always)]
        pub(super) fn mul(&self, other: &Fe) -> Fe {
            self.relax().mul(&other.relax())
        }

        #[inline(always)]
        pub(super) fn square(&self) -> Fe {
            self.relax().square()
        }

        /// `self^(2^k)`.
        fn pow2k(&self, k: u32) -> Fe {
            let mut x = *self;
            for _ in 0..k {
                x = x.square();
            }
            x
        }

        pub(super) fn is_zero(&self) -> bool {
            self.to_bytes() == [0u8; 32]
        }

        pub(super) fn equals(&self, other: &Fe) -> bool {
            self.to_bytes() == other.to_bytes()
        }

        /// Whether the canonical encoding is odd (the "negative" half).
        #[inline(always)]
        pub(super) fn is_negative(&self) -> bool {
            self.to_bytes()[0] & 1 == 1
        }

        /// `(self^(2^250 − 1), self^11)`, the common part of inversion and
        /// square roots (the addition chain of ref10 and dalek).
        fn pow22501(&self) -> (Fe, Fe) {
            let t0 = self.square();
            let t1 = t0.square().square();
            let t2 = self.mul(&t1);
            let t3 = t0.mul(&t2);
            let t4 = t3.square();
            let t5 = t2.mul(&t4);
            let t6 = t5.pow2k(5);
            let t7 = t6.mul(&t5);
            let t8 = t7.pow2k(10);
            let t9 = t8.mul(&t7);
            let t10 = t9.pow2k(20);
            let t11 = t10.mul(&t9);
            let t12 = t11.pow2k(10);
            let t13 = t12.mul(&t7);
            let t14 = t13.pow2k(50);
            let t15 = t14.mul(&t13);
            let t16 = t15.pow2k(100);
            let t17 = t16.mul(&t15);
            let t18 = t17.pow2k(50);
            let t19 = t18.mul(&t13);
            (t19, t3)
        }

        /// `self^(p − 2)`: the inverse, and zero for zero.
        pub(super) fn invert(&self) -> Fe {
            let (t19, t3) = self.pow22501();
            t19.pow2k(5).mul(&t3)
        }

        /// `self^((p − 5) / 8)`.
        fn pow_p58(&self) -> Fe {
            let (t19, _) = self.pow22501();
            self.mul(&t19.pow2k(2))
        }

        /// `sqrt(u / v)` with a non-negative result, if it exists.
        pub(super) fn sqrt_ratio(u: &Fe, v: &Fe) -> Option<Fe> {
            let v3 = v.square().mul(v);
            let v7 = v3.square().mul(v);
            let mut r = u.mul(&v3).mul(&u.mul(&v7).pow_p58());
            let check = v.mul(&r.square());
            if check.equals(&u.neg()) {
                r = r.mul(&super::SQRT_M1);
            } else if !check.equals(u) {
                return None;
            }
            Some(if r.is_negative() { r.neg() } else { r })
        }
    }

    impl Loose {
        #[inline(always)]
        pub(super) fn carry(&self) -> Fe {
            let mut out = fiat::fiat_25519_tight_field_element([0; 5]);
            fiat::fiat_25519_carry(&mut out, &self.0);
            Fe(out)
        }

        #[inline(always)]
        pub(super) fn mul(&self, other: &Loose) -> Fe {
            let mut out = fiat::fiat_25519_tight_field_element([0; 5]);
            fiat::fiat_25519_carry_mul(&mut out, &self.0, &other.0);
            Fe(out)
        }

        #[inline(always)]
        pub(super) fn square(&self) -> Fe {
            let mut out = fiat::fiat_25519_tight_field_element([0; 5]);
            fiat::fiat_25519_carry_square(&mut out, &self.0);
            Fe(out)
        }
    }
}

/// The curve constant `d = −121665/121666` (radix-2^51 limbs).
const EDWARDS_D: Fe = Fe::from_limbs([
    0x34dca135978a3,
    0x1a8283b156ebd,
    0x5e7a26001c029,
    0x739c663a03cbb,
    0x52036cee2b6ff,
]);

/// `2d`.
const EDWARDS_D2: Fe = Fe::from_limbs([
    0x69b9426b2f159,
    0x35050762add7a,
    0x3cf44c0038052,
    0x6738cc7407977,
    0x2406d9dc56dff,
]);

/// A square root of −1.
const SQRT_M1: Fe = Fe::from_limbs([
    0x61b274a0ea0b0,
    0xd5a5fc8f189d,
    0x7ef5e9cbd0c60,
    0x78595a6804c9e,
    0x2b8324804fc1d,
]);

/// A point in extended coordinates `(X : Y : Z : T)`, `x = X/Z`,
/// `y = Y/Z`, `x·y = T/Z`.
#[derive(Clone, Copy)]
struct Extended {
    x: Fe,
    y: Fe,
    z: Fe,
    t: Fe,
}

/// A point in affine Niels form `(y + x, y − x, 2d·x·y)`, the addend of a
/// mixed addition.
#[derive(Clone, Copy)]
struct Niels {
    y_plus_x: Loose,
    y_minus_x: Loose,
    xy2d: Loose,
}

impl Extended {
    const IDENTITY: Extended = Extended {
        x: Fe::ZERO,
        y: Fe::ONE,
        z: Fe::ONE,
        t: Fe::ZERO,
    };

    /// The point a canonical compressed encoding names (`None` if none).
    fn decompress(bytes: &[u8; 32]) -> Option<Extended> {
        let y = Fe::from_bytes(bytes);
        let yy = y.square();
        let u = yy.sub(&Fe::ONE).carry();
        let v = yy.mul(&EDWARDS_D).add(&Fe::ONE).carry();
        let mut x = Fe::sqrt_ratio(&u, &v)?;
        if bytes[31] >> 7 == 1 {
            x = x.neg();
        }
        Some(Extended {
            x,
            y,
            z: Fe::ONE,
            t: x.mul(&y),
        })
    }

    /// From the completed point `((X : Z), (Y : T))`: four multiplications.
    #[inline(always)]
    fn from_completed(x: Loose, y: Loose, z: Loose, t: Loose) -> Extended {
        Extended {
            x: x.mul(&t),
            y: y.mul(&z),
            z: z.mul(&t),
            t: x.mul(&y),
        }
    }

    /// `self ± q` (`negate` subtracts): seven multiplications.
    #[inline(always)]
    fn add_niels(&self, q: &Niels, negate: bool) -> Extended {
        let y_plus_x = self.y.add(&self.x);
        let y_minus_x = self.y.sub(&self.x);
        // −q = (−x, y): y + x and y − x swap, 2d·x·y changes sign.
        let (a, b) = if negate {
            (&q.y_minus_x, &q.y_plus_x)
        } else {
            (&q.y_plus_x, &q.y_minus_x)
        };
        let pp = y_plus_x.mul(a);
        let mm = y_minus_x.mul(b);
        let txy2d = self.t.relax().mul(&q.xy2d);
        let z2 = self.z.add(&self.z).carry();
        let (z, t) = if negate {
            (z2.sub(&txy2d), z2.add(&txy2d))
        } else {
            (z2.add(&txy2d), z2.sub(&txy2d))
        };
        Extended::from_completed(pp.sub(&mm), pp.add(&mm), z, t)
    }

    /// `self + other` (complete: also doubles).
    fn add(&self, other: &Extended) -> Extended {
        let pp = self.y.add(&self.x).mul(&other.y.add(&other.x));
        let mm = self.y.sub(&self.x).mul(&other.y.sub(&other.x));
        let tt2d = self.t.mul(&other.t).mul(&EDWARDS_D2);
        let zz = self.z.mul(&other.z);
        let zz2 = zz.add(&zz).carry();
        Extended::from_completed(pp.sub(&mm), pp.add(&mm), zz2.add(&tt2d), zz2.sub(&tt2d))
    }
}

/// Inverts every element of `values` with one field inversion (Montgomery's
/// trick). Returns `false`, leaving `values` unchanged, if one is zero.
fn batch_invert(values: &mut [Fe]) -> bool {
    let mut prefix = Vec::with_capacity(values.len());
    let mut product = Fe::ONE;
    for value in values.iter() {
        prefix.push(product);
        product = product.mul(value);
    }
    if product.is_zero() {
        return false;
    }
    let mut inverse = product.invert();
    for (value, before) in values.iter_mut().zip(prefix).rev() {
        let next = inverse.mul(value);
        *value = inverse.mul(&before);
        inverse = next;
    }
    true
}

/// The encoding of the point `(X : Y : Z)` given `1/Z`.
fn encode(point: &Extended, z_inverse: &Fe) -> [u8; 32] {
    let mut bytes = point.y.mul(z_inverse).to_bytes();
    if point.x.mul(z_inverse).is_negative() {
        bytes[31] |= 0x80;
    }
    bytes
}

/// Variable-time fixed-base multiplication table for one point `P`.
///
/// Row `i` holds `j · 2^(w·i) · P` for `j = 1 ..= 2^(w−1)`, stored row-major
/// in one flat vector.
pub(crate) struct FixedBaseTable {
    /// Window width in bits.
    w: usize,
    /// Points per row, `2^(w−1)`.
    half: usize,
    /// `digit_count(w) × half` points.
    points: Vec<Niels>,
    /// The same points as 64-bit words for the AVX-512 path, then the
    /// identity ([`ifma::WORDS`] words each); empty where that path is
    /// not the process's engine.
    #[cfg(target_arch = "x86_64")]
    words: Vec<u64>,
}

impl FixedBaseTable {
    /// Builds the table for `p` with window width `w` using
    /// `digit_count(w) · 2^(w−1)` point additions and one batch inversion.
    fn new(p: &Extended, w: usize) -> Self {
        let n = digit_count(w);
        let half = 1usize << (w - 1);
        let mut points = Vec::with_capacity(n * half);
        let mut base = *p;
        for _ in 0..n {
            let mut acc = base;
            points.push(acc);
            for _ in 1..half {
                acc = acc.add(&base);
                points.push(acc);
            }
            // Next row base: 2^w · base = 2 · (2^(w−1) · base).
            base = acc.add(&acc);
        }
        let mut z_inverses: Vec<Fe> = points.iter().map(|point| point.z).collect();
        let inverted = batch_invert(&mut z_inverses);
        // Points of the curve in extended coordinates never have Z = 0.
        assert!(inverted, "a table point with Z = 0");
        let d2 = EDWARDS_D2;
        let affine: Vec<(Fe, Fe, Fe)> = points
            .iter()
            .zip(&z_inverses)
            .map(|(point, z_inverse)| {
                let x = point.x.mul(z_inverse);
                let y = point.y.mul(z_inverse);
                (y.add(&x).carry(), y.sub(&x).carry(), x.mul(&y).mul(&d2))
            })
            .collect();
        // Gather words only for the engine that reads them: with
        // `use_scalar_engine` the tables are as small as on a CPU without
        // IFMA, so the benchmark's caches hold what that CPU's would.
        #[cfg(target_arch = "x86_64")]
        let words = if Engine::best() == Engine::Ifma {
            let identity = (Fe::ONE, Fe::ONE, Fe::ZERO);
            affine
                .iter()
                .chain([&identity])
                .flat_map(|(y_plus_x, y_minus_x, xy2d)| {
                    ifma::point_words(y_plus_x, y_minus_x, xy2d)
                })
                .collect()
        } else {
            Vec::new()
        };
        let points = affine
            .iter()
            .map(|(y_plus_x, y_minus_x, xy2d)| Niels {
                y_plus_x: y_plus_x.relax(),
                y_minus_x: y_minus_x.relax(),
                xy2d: xy2d.relax(),
            })
            .collect();
        FixedBaseTable {
            w,
            half,
            points,
            #[cfg(target_arch = "x86_64")]
            words,
        }
    }

    /// The table of the point with canonical encoding `bytes`.
    pub(crate) fn for_encoding(bytes: &[u8; 32], w: usize) -> Option<Self> {
        Extended::decompress(bytes).map(|p| FixedBaseTable::new(&p, w))
    }

    /// Memory held by the points, in bytes.
    pub(crate) fn size_bytes(&self) -> usize {
        #[cfg(target_arch = "x86_64")]
        let words = self.words.len() * 8;
        #[cfg(not(target_arch = "x86_64"))]
        let words = 0;
        self.points.len() * std::mem::size_of::<Niels>() + words
    }

    /// The table point for signed digit `d` at position `i` and whether to
    /// subtract it; `None` for a zero digit.
    #[inline(always)]
    fn term(&self, i: usize, d: i16) -> Option<(&Niels, bool)> {
        (d != 0).then(|| {
            (
                &self.points[i * self.half + (d.unsigned_abs() as usize - 1)],
                d < 0,
            )
        })
    }

    /// Adds `sign · [x]P` to `acc`, where `x` is given by its canonical
    /// little-endian bytes (`x < 2^253`) and `sign` is `+1` (`negate ==
    /// false`) or `−1` (`negate == true`).
    #[inline]
    fn accumulate(&self, acc: &mut Extended, x: &[u8; 32], negate: bool) {
        let mut digits = [0i16; 128];
        signed_digits(x, self.w, &mut digits);
        for (i, &d) in digits[..digit_count(self.w)].iter().enumerate() {
            if let Some((point, minus)) = self.term(i, d) {
                *acc = acc.add_niels(point, minus != negate);
            }
        }
    }
}

/// The process-wide table for the Ed25519 basepoint `B` (built on first use).
fn basepoint_table() -> &'static FixedBaseTable {
    static TABLE: OnceLock<FixedBaseTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        FixedBaseTable::for_encoding(ED25519_BASEPOINT_COMPRESSED.as_bytes(), W_BASE)
            .expect("the basepoint decompresses")
    })
}

/// The encodings of the eight points of small order.
fn small_order_encodings() -> &'static [[u8; 32]; 8] {
    static ENCODINGS: OnceLock<[[u8; 32]; 8]> = OnceLock::new();
    ENCODINGS.get_or_init(|| EIGHT_TORSION.map(|point| point.compress().to_bytes()))
}

/// A verifying key with a precomputed fixed-base table, for verifying many
/// signatures by the same key faster than `VerifyingKey::verify_strict`.
///
/// Building costs `digit_count(W_KEY) · 2^(W_KEY−1)` point additions and
/// holds that many points (161 KiB for `W_KEY = 6`, twice that with the
/// AVX-512 IFMA engine's gather words).
pub struct PreparedKey {
    /// The key bytes exactly as given (they enter the challenge hash).
    a_bytes: [u8; 32],
    /// Fixed-base table for `A`; `None` if `A` has small order, in which
    /// case `verify_strict` (like dalek's) rejects every signature.
    table: Option<FixedBaseTable>,
}

impl PreparedKey {
    /// Precomputes the fixed-base table of `key`.
    pub fn new(key: &ed25519_dalek::VerifyingKey) -> Self {
        let a = key.to_edwards();
        let weak = a.is_small_order();
        // Make sure the basepoint table exists before timing-sensitive use.
        let _ = basepoint_table();
        PreparedKey {
            a_bytes: *key.as_bytes(),
            // The point as dalek decoded it, through its canonical encoding
            // (the key bytes themselves may encode y non-canonically).
            table: if weak {
                None
            } else {
                FixedBaseTable::for_encoding(a.compress().as_bytes(), W_KEY)
            },
        }
    }

    /// The key's encoding, as given.
    pub fn key_bytes(&self) -> &[u8; 32] {
        &self.a_bytes
    }

    /// Memory held by this key's table, in bytes.
    pub fn table_size_bytes(&self) -> usize {
        self.table.as_ref().map_or(0, |t| t.size_bytes())
    }

    /// Same decision as `key.verify_strict(message, signature).is_ok()`.
    pub fn verify_strict(&self, message: &[u8], signature: &ed25519_dalek::Signature) -> bool {
        self.verify_strict_batch(&[(message, signature)])[0]
    }

    /// For each `(message, signature)`, the same decision as
    /// `key.verify_strict(message, signature).is_ok()`, in order; cheaper
    /// per signature than one at a time (one field inversion for all).
    pub fn verify_strict_batch(&self, items: &[(&[u8], &ed25519_dalek::Signature)]) -> Vec<bool> {
        self.verify_batch_with(items, Engine::best())
    }

    /// [`PreparedKey::verify_strict_batch`] on a chosen engine.
    fn verify_batch_with(
        &self,
        items: &[(&[u8], &ed25519_dalek::Signature)],
        engine: Engine,
    ) -> Vec<bool> {
        let mut decisions = vec![false; items.len()];
        let Some(table) = &self.table else {
            return decisions; // small-order public key
        };
        let b = basepoint_table();
        let mut indices = Vec::with_capacity(items.len());
        let mut scalars = Vec::with_capacity(items.len());
        for (index, (message, signature)) in items.iter().enumerate() {
            if let Some(pair) = equation_scalars(&self.a_bytes, message, signature) {
                indices.push(index);
                scalars.push(pair);
            }
        }
        let points: Vec<Extended> = match engine {
            Engine::Scalar => scalars
                .iter()
                .map(|(s, k)| {
                    let mut e = Extended::IDENTITY;
                    b.accumulate(&mut e, s, false);
                    table.accumulate(&mut e, k, true);
                    e
                })
                .collect(),
            #[cfg(target_arch = "x86_64")]
            Engine::Ifma => ifma::equation_points(b, table, &scalars),
        };
        let mut z_inverses: Vec<Fe> = points.iter().map(|e| e.z).collect();
        if !batch_invert(&mut z_inverses) {
            // Not reachable for curve points; stay exact regardless.
            for (z_inverse, e) in z_inverses.iter_mut().zip(&points) {
                *z_inverse = e.z.invert();
            }
        }
        for ((index, e), z_inverse) in indices.into_iter().zip(&points).zip(&z_inverses) {
            let r_bytes = items[index].1.r_bytes();
            decisions[index] =
                encode(e, z_inverse) == *r_bytes && !small_order_encodings().contains(r_bytes);
        }
        decisions
    }
}

/// The scalars of `E = [s]B − [k]A` for one signature by the key encoded
/// as `a_bytes`: `s` and `k = SHA-512(R ‖ A ‖ M) mod ℓ`, both canonical;
/// `None` when `s` is not canonical.
#[inline]
fn equation_scalars(
    a_bytes: &[u8; 32],
    message: &[u8],
    signature: &ed25519_dalek::Signature,
) -> Option<([u8; 32], [u8; 32])> {
    let s_bytes = *signature.s_bytes();
    Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    let mut h = Sha512::new();
    h.update(signature.r_bytes());
    h.update(a_bytes);
    h.update(message);
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    Some((s_bytes, k.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::edwards::CompressedEdwardsY;
    use curve25519_dalek::edwards::EdwardsPoint;
    use curve25519_dalek::traits::Identity;
    use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
    use proptest::prelude::*;
    use rand::{Rng, RngCore, SeedableRng};

    /// ℓ, the order of the prime subgroup, little-endian.
    const L_BYTES: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    fn oracle(key: &VerifyingKey, msg: &[u8], sig: &Signature) -> bool {
        key.verify_strict(msg, sig).is_ok()
    }

    /// Every engine this CPU runs: the scalar one, and AVX-512 IFMA where
    /// the CPU has it.
    fn engines() -> Vec<Engine> {
        #[allow(unused_mut)]
        let mut engines = vec![Engine::Scalar];
        #[cfg(target_arch = "x86_64")]
        if ifma::available() {
            engines.push(Engine::Ifma);
        }
        engines
    }

    fn check(key: &VerifyingKey, prep: &PreparedKey, msg: &[u8], sig: &Signature) -> bool {
        let want = oracle(key, msg, sig);
        // Checked inside a batch, twice, around one with a non-canonical `s`,
        // on every engine.
        let malformed = Signature::from_bytes(&[0xff; 64]);
        for engine in engines() {
            let batch =
                prep.verify_batch_with(&[(msg, sig), (b"", &malformed), (msg, sig)], engine);
            assert_eq!(batch[1..], [false, want], "{engine:?}");
            assert_eq!(
                batch[0],
                want,
                "mismatch on {engine:?}: key {:02x?} msg {:02x?} sig {:02x?}",
                key.as_bytes(),
                msg,
                sig.to_bytes()
            );
        }
        want
    }

    /// Each signature of `cases` checked in one batch on every engine:
    /// every decision equals dalek's. Returns how many verified.
    fn check_all(key: &VerifyingKey, prep: &PreparedKey, cases: &[(Vec<u8>, Signature)]) -> usize {
        let items: Vec<(&[u8], &Signature)> =
            cases.iter().map(|(m, s)| (m.as_slice(), s)).collect();
        let want: Vec<bool> = cases.iter().map(|(m, s)| oracle(key, m, s)).collect();
        for engine in engines() {
            let got = prep.verify_batch_with(&items, engine);
            for (index, (got, want)) in got.iter().zip(&want).enumerate() {
                let (msg, sig) = &cases[index];
                assert_eq!(
                    got,
                    want,
                    "mismatch on {engine:?}: key {:02x?} msg {:02x?} sig {:02x?}",
                    key.as_bytes(),
                    msg,
                    sig.to_bytes()
                );
            }
        }
        want.iter().filter(|w| **w).count()
    }

    /// Little-endian 256-bit addition (no overflow expected here).
    fn add_le(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
        let mut out = [0u8; 32];
        let mut c = 0u16;
        for i in 0..32 {
            let v = a[i] as u16 + b[i] as u16 + c;
            out[i] = v as u8;
            c = v >> 8;
        }
        assert_eq!(c, 0);
        out
    }

    fn sig_from(r: &[u8; 32], s: &[u8; 32]) -> Signature {
        let mut b = [0u8; 64];
        b[..32].copy_from_slice(r);
        b[32..].copy_from_slice(s);
        Signature::from_bytes(&b)
    }

    fn challenge(r: &[u8; 32], a: &[u8; 32], m: &[u8]) -> Scalar {
        let mut h = Sha512::new();
        h.update(r);
        h.update(a);
        h.update(m);
        Scalar::from_bytes_mod_order_wide(&h.finalize().into())
    }

    #[test]
    fn digits_reconstruct_scalar() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for w in 2..=10 {
            let n = digit_count(w);
            let mut digits = [0i16; 128];
            for t in 0..500 {
                let x = match t {
                    0 => Scalar::ZERO,
                    1 => -Scalar::ONE, // ℓ − 1
                    _ => Scalar::from_bytes_mod_order_wide(&{
                        let mut b = [0u8; 64];
                        rng.fill_bytes(&mut b);
                        b
                    }),
                };
                signed_digits(x.as_bytes(), w, &mut digits);
                let radix = Scalar::from(1u64 << w);
                let mut acc = Scalar::ZERO;
                let mut pow = Scalar::ONE;
                for &d in &digits[..n] {
                    assert!((d as i32).abs() <= 1 << (w - 1));
                    let ds = Scalar::from(d.unsigned_abs() as u64);
                    acc += if d < 0 { -(ds * pow) } else { ds * pow };
                    pow *= radix;
                }
                assert_eq!(acc, x, "w = {w}");
            }
            // Largest 253-bit pattern (not reduced, but < 2^253) must also fit.
            let mut top = [0xffu8; 32];
            top[31] = 0x1f;
            signed_digits(&top, w, &mut digits);
        }
    }

    /// The canonical encoding of an extended point.
    fn compressed(e: &Extended) -> [u8; 32] {
        encode(e, &e.z.invert())
    }

    #[test]
    fn field_constants() {
        let d = EDWARDS_D;
        let small = |v: u8| {
            let mut b = [0u8; 32];
            b[0] = v;
            b
        };
        let n121666 = Fe::from_bytes(&{
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&121_666u32.to_le_bytes());
            b
        });
        let n121665 = n121666.sub(&Fe::from_bytes(&small(1))).carry();
        assert_eq!(d.mul(&n121666).to_bytes(), n121665.neg().to_bytes());
        assert_eq!(d.add(&d).carry().to_bytes(), EDWARDS_D2.to_bytes());
        assert_eq!(
            SQRT_M1.square().to_bytes(),
            Fe::ONE.neg().to_bytes(),
            "sqrt(-1)^2 = -1"
        );
    }

    #[test]
    fn decompression_and_encoding_match_dalek() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(8);
        let mut points: Vec<EdwardsPoint> = EIGHT_TORSION.to_vec();
        for _ in 0..200 {
            let mut b = [0u8; 64];
            rng.fill_bytes(&mut b);
            let point = EdwardsPoint::mul_base(&Scalar::from_bytes_mod_order_wide(&b));
            points.push(point);
            points.push(point + EIGHT_TORSION[3]);
        }
        for point in &points {
            let bytes = point.compress().to_bytes();
            let ours = Extended::decompress(&bytes).expect("a curve point decompresses");
            assert_eq!(compressed(&ours), bytes);
            // Doubling through the complete addition.
            assert_eq!(
                compressed(&ours.add(&ours)),
                (point + point).compress().to_bytes()
            );
        }
        // Encodings of no point: dalek and we agree they do not decompress.
        let mut none = 0;
        for y in 0u8..=255 {
            let mut bytes = [0u8; 32];
            bytes[0] = y;
            bytes[1] = 0x42;
            let theirs = CompressedEdwardsY(bytes).decompress();
            assert_eq!(theirs.is_some(), Extended::decompress(&bytes).is_some());
            none += usize::from(theirs.is_none());
        }
        assert!(none > 0);
    }

    #[test]
    fn batch_inversion_inverts_each() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let mut values: Vec<Fe> = (0..37)
            .map(|_| {
                let mut b = [0u8; 32];
                rng.fill_bytes(&mut b);
                Fe::from_bytes(&b)
            })
            .collect();
        let originals = values.clone();
        assert!(batch_invert(&mut values));
        for (value, inverse) in originals.iter().zip(&values) {
            assert_eq!(value.mul(inverse).to_bytes(), Fe::ONE.to_bytes());
        }
        values.push(Fe::ZERO);
        assert!(!batch_invert(&mut values));
        assert!(batch_invert(&mut []));
    }

    #[test]
    fn tables_match_scalar_mul() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let p = EdwardsPoint::mul_base(&Scalar::from(12345u64)) + EIGHT_TORSION[5];
        let table = FixedBaseTable::for_encoding(p.compress().as_bytes(), W_KEY).unwrap();
        for _ in 0..200 {
            let mut b = [0u8; 64];
            rng.fill_bytes(&mut b);
            let x = Scalar::from_bytes_mod_order_wide(&b);
            let mut acc = Extended::IDENTITY;
            table.accumulate(&mut acc, x.as_bytes(), false);
            assert_eq!(compressed(&acc), (p * x).compress().to_bytes());
            let mut acc = Extended::IDENTITY;
            basepoint_table().accumulate(&mut acc, x.as_bytes(), true);
            assert_eq!(
                compressed(&acc),
                (-EdwardsPoint::mul_base(&x)).compress().to_bytes()
            );
        }
    }

    /// One batch of valid, corrupted and crafted signatures: each decision
    /// in the batch equals dalek's, in order.
    #[test]
    fn batch_decisions_match_one_by_one() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(10);
        let sk = SigningKey::generate(&mut rng);
        let vk = sk.verifying_key();
        let prep = PreparedKey::new(&vk);
        let mut cases: Vec<(Vec<u8>, Signature)> = Vec::new();
        for i in 0..300u32 {
            let msg = i.to_le_bytes().to_vec();
            let sig = sk.sign(&msg);
            let mut b = sig.to_bytes();
            match i % 4 {
                0 => {}
                1 => b[rng.gen_range(0..64)] ^= 1 << rng.gen_range(0..8),
                2 => b[..32].copy_from_slice(EIGHT_TORSION[i as usize % 8].compress().as_bytes()),
                _ => b[32..].copy_from_slice(&add_le(sig.s_bytes(), &L_BYTES)),
            }
            cases.push((msg, Signature::from_bytes(&b)));
        }
        let items: Vec<(&[u8], &Signature)> =
            cases.iter().map(|(m, s)| (m.as_slice(), s)).collect();
        for engine in engines() {
            let decisions = prep.verify_batch_with(&items, engine);
            let mut accepted = 0;
            for ((msg, sig), decision) in cases.iter().zip(decisions) {
                assert_eq!(decision, oracle(&vk, msg, sig), "{engine:?}");
                accepted += usize::from(decision);
            }
            assert!(
                (75..300).contains(&accepted),
                "{engine:?} accepted {accepted}"
            );
            assert!(prep.verify_batch_with(&[], engine).is_empty());
        }
    }

    /// The AVX-512 sums equal the scalar ones point for point, for edge and
    /// random scalars, in groups that fill eight lanes or leave some empty.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn ifma_points_match_scalar_points() {
        if !ifma::available() {
            eprintln!("this CPU has no AVX-512 IFMA; the scalar engine is the only one");
            return;
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let p = EdwardsPoint::mul_base(&Scalar::from(987_654_321u64)) + EIGHT_TORSION[3];
        let a = FixedBaseTable::for_encoding(p.compress().as_bytes(), W_KEY).unwrap();
        let b = basepoint_table();
        let edges = [
            Scalar::ZERO,
            Scalar::ONE,
            -Scalar::ONE,
            Scalar::from(2u64).invert(),
            Scalar::from(u64::MAX),
        ];
        let mut scalars: Vec<([u8; 32], [u8; 32])> = Vec::new();
        for x in edges {
            for y in edges {
                scalars.push((x.to_bytes(), y.to_bytes()));
            }
        }
        for _ in 0..40 {
            let mut wide = [0u8; 64];
            rng.fill_bytes(&mut wide);
            let x = Scalar::from_bytes_mod_order_wide(&wide);
            rng.fill_bytes(&mut wide);
            let y = Scalar::from_bytes_mod_order_wide(&wide);
            scalars.push((x.to_bytes(), y.to_bytes()));
        }
        for len in [0, 1, 7, 8, 9, 17, scalars.len()] {
            let part = &scalars[..len];
            let points = ifma::equation_points(b, &a, part);
            assert_eq!(points.len(), len);
            for ((s, k), e) in part.iter().zip(&points) {
                let want = EdwardsPoint::mul_base(&Scalar::from_bytes_mod_order(*s))
                    - p * Scalar::from_bytes_mod_order(*k);
                assert_eq!(compressed(e), want.compress().to_bytes());
                // Fed back into the scalar code, which needs fiat's tight bounds.
                let mut scalar = Extended::IDENTITY;
                b.accumulate(&mut scalar, s, false);
                a.accumulate(&mut scalar, k, true);
                assert_eq!(compressed(&scalar), compressed(e));
            }
        }
    }

    /// 2,000 random valid signatures (covers every digit position and value
    /// range many times over), plus a random single-bit flip on each.
    #[test]
    fn many_valid_signatures() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let sk = SigningKey::generate(&mut rng);
        let vk = sk.verifying_key();
        let prep = PreparedKey::new(&vk);
        let mut cases = Vec::new();
        for i in 0..2000u32 {
            let len = rng.gen_range(0..200);
            let mut msg = vec![0u8; len];
            rng.fill_bytes(&mut msg);
            msg.extend_from_slice(&i.to_le_bytes());
            let sig = sk.sign(&msg);
            let mut b = sig.to_bytes();
            let bit = rng.gen_range(0..512);
            b[bit / 8] ^= 1 << (bit % 8);
            cases.push((msg.clone(), sig));
            cases.push((msg, Signature::from_bytes(&b)));
        }
        // Every valid one verifies; no flipped one does.
        assert_eq!(check_all(&vk, &prep, &cases), 2000);
        assert!(prep.verify_strict(&cases[0].0, &cases[0].1));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn prop_matches_oracle(
            seed in any::<[u8; 32]>(),
            other in any::<[u8; 32]>(),
            msg in proptest::collection::vec(any::<u8>(), 0..300),
            sig_bit in 0usize..512,
            msg_bit in any::<usize>(),
        ) {
            let sk = SigningKey::from_bytes(&seed);
            let vk = sk.verifying_key();
            let prep = PreparedKey::new(&vk);
            let sig = sk.sign(&msg);
            prop_assert!(check(&vk, &prep, &msg, &sig));

            // Single bit flip in the signature.
            let mut b = sig.to_bytes();
            b[sig_bit / 8] ^= 1 << (sig_bit % 8);
            check(&vk, &prep, &msg, &Signature::from_bytes(&b));

            // Single bit flip in the message.
            if !msg.is_empty() {
                let mut m2 = msg.clone();
                let bit = msg_bit % (8 * m2.len());
                m2[bit / 8] ^= 1 << (bit % 8);
                check(&vk, &prep, &m2, &sig);
            }

            // A different key.
            let vk2 = SigningKey::from_bytes(&other).verifying_key();
            let prep2 = PreparedKey::new(&vk2);
            check(&vk2, &prep2, &msg, &sig);
        }

        #[test]
        fn prop_every_sig_bit(seed in any::<[u8; 32]>(), msg in proptest::collection::vec(any::<u8>(), 0..64)) {
            let sk = SigningKey::from_bytes(&seed);
            let vk = sk.verifying_key();
            let prep = PreparedKey::new(&vk);
            let sig = sk.sign(&msg);
            let flipped: Vec<(Vec<u8>, Signature)> = (0..512)
                .map(|bit| {
                    let mut b = sig.to_bytes();
                    b[bit / 8] ^= 1 << (bit % 8);
                    (msg.clone(), Signature::from_bytes(&b))
                })
                .collect();
            check_all(&vk, &prep, &flipped);
        }
    }

    #[test]
    fn non_canonical_s_rejected() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        for _ in 0..50 {
            let sk = SigningKey::generate(&mut rng);
            let vk = sk.verifying_key();
            let prep = PreparedKey::new(&vk);
            let msg = b"proof of play";
            let sig = sk.sign(msg);
            let s2 = add_le(sig.s_bytes(), &L_BYTES);
            if s2[31] & 0xe0 != 0 {
                continue;
            }
            let forged = sig_from(sig.r_bytes(), &s2);
            assert!(!check(&vk, &prep, msg, &forged));
        }
    }

    /// Non-canonical encodings of R: `y + p` (possible only for `y < 19`)
    /// and a set sign bit with `x = 0`.  For R = identity the equation can be
    /// made to hold exactly with the secret key (s = k·a); for the other small
    /// y values only the decision has to match.
    #[test]
    fn non_canonical_r_encodings() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        // p = 2^255 - 19, little-endian.
        let mut p = [0xffu8; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        let mut noncanonical_decompressing = 0;
        for _ in 0..5 {
            let sk = SigningKey::generate(&mut rng);
            let vk = sk.verifying_key();
            let prep = PreparedKey::new(&vk);
            let a = sk.to_scalar();
            let msg = b"non-canonical R";
            for y in 0u8..19 {
                for sign in [0u8, 0x80] {
                    let mut canon = [0u8; 32];
                    canon[0] = y;
                    canon[31] |= sign;
                    let mut noncanon = add_le(
                        &{
                            let mut c = [0u8; 32];
                            c[0] = y;
                            c
                        },
                        &p,
                    );
                    noncanon[31] |= sign;
                    for r in [canon, noncanon] {
                        if CompressedEdwardsY(r).decompress().is_some() && r != canon {
                            noncanonical_decompressing += 1;
                        }
                        let k = challenge(&r, vk.as_bytes(), msg);
                        for s in [Scalar::ZERO, Scalar::ONE, k * a] {
                            check(&vk, &prep, msg, &sig_from(&r, s.as_bytes()));
                        }
                    }
                }
            }
        }
        assert!(noncanonical_decompressing > 0);
    }

    /// Small-order R on a real (prime-order) key.  `[s]B − [k]A` lies in the
    /// prime-order subgroup, so the only small-order R that can satisfy the
    /// equation is the identity: with the secret scalar `a`, `s = k·a` makes
    /// `[s]B − [k]A = identity = R` hold exactly; the signature must still be
    /// rejected because R has small order.  Also every torsion point as R
    /// with `s = 0`.
    #[test]
    fn small_order_r_forgeries() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(6);
        for _ in 0..20 {
            let sk = SigningKey::generate(&mut rng);
            let vk = sk.verifying_key();
            let prep = PreparedKey::new(&vk);
            let a_scalar = sk.to_scalar();
            let msg = b"forged";
            let id = EdwardsPoint::identity().compress();
            let k = challenge(id.as_bytes(), vk.as_bytes(), msg);
            let s = k * a_scalar;
            // Sanity: the lax equation [s]B - [k]A == R holds.
            assert_eq!(
                EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-vk.to_edwards(), &s),
                EdwardsPoint::identity()
            );
            let sig = sig_from(id.as_bytes(), s.as_bytes());
            assert!(!check(&vk, &prep, msg, &sig));
            // Every torsion point as R with s = 0 on the real key.
            for t in EIGHT_TORSION.iter() {
                check(
                    &vk,
                    &prep,
                    msg,
                    &sig_from(t.compress().as_bytes(), Scalar::ZERO.as_bytes()),
                );
            }
        }
    }

    /// Small-order public keys: dalek rejects everything; so must we,
    /// including signatures that satisfy the equation.
    #[test]
    fn small_order_public_keys() {
        for a in EIGHT_TORSION.iter() {
            let vk = VerifyingKey::from_bytes(a.compress().as_bytes()).unwrap();
            let prep = PreparedKey::new(&vk);
            assert_eq!(prep.table_size_bytes(), 0);
            let mut exact = 0;
            for i in 0..64u32 {
                let msg = i.to_le_bytes();
                for r in EIGHT_TORSION.iter() {
                    let rc = r.compress();
                    let k = challenge(rc.as_bytes(), vk.as_bytes(), &msg);
                    // With s = 0, [s]B − [k]A = −[k]A is a torsion point; count
                    // the cases where it equals R (the equation holds exactly).
                    if -(a * k) == *r {
                        exact += 1;
                    }
                    for s in [Scalar::ZERO, Scalar::ONE, Scalar::from(8u64)] {
                        assert!(!check(
                            &vk,
                            &prep,
                            &msg,
                            &sig_from(rc.as_bytes(), s.as_bytes())
                        ));
                    }
                }
            }
            assert!(exact > 0);
        }
    }

    /// Mixed-order key (A = a·B + T): not small order, so dalek accepts
    /// signatures satisfying the cofactorless equation; our decision must
    /// agree on valid and tweaked signatures.
    #[test]
    fn mixed_order_key() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (mut accepted, mut rejected) = (0, 0);
        let mut tally = |ok: bool| if ok { accepted += 1 } else { rejected += 1 };
        for t in EIGHT_TORSION.iter().skip(1) {
            let a = Scalar::from_bytes_mod_order({
                let mut b = [0u8; 32];
                rng.fill_bytes(&mut b);
                b
            });
            let a_pt = EdwardsPoint::mul_base(&a) + t;
            let a_bytes = a_pt.compress();
            let vk = VerifyingKey::from_bytes(a_bytes.as_bytes()).unwrap();
            let prep = PreparedKey::new(&vk);
            for i in 0..16u8 {
                let msg = [i; 5];
                let r = Scalar::from(1000u64 + i as u64);
                let r_pt = EdwardsPoint::mul_base(&r);
                let rc = r_pt.compress();
                let k = challenge(rc.as_bytes(), a_bytes.as_bytes(), &msg);
                // [s]B - [k](aB + T) = R  needs [k]T = 0, i.e. 8 | k·ord(T);
                // accept/reject just has to match the oracle either way.
                let s = r + k * a;
                tally(check(
                    &vk,
                    &prep,
                    &msg,
                    &sig_from(rc.as_bytes(), s.as_bytes()),
                ));
                // Compensate the torsion in R: R' = R - [k]T.
                let r2 = r_pt - t * k;
                let rc2 = r2.compress();
                let k2 = challenge(rc2.as_bytes(), a_bytes.as_bytes(), &msg);
                let s2 = r + k2 * a;
                tally(check(
                    &vk,
                    &prep,
                    &msg,
                    &sig_from(rc2.as_bytes(), s2.as_bytes()),
                ));
            }
        }
        // Both outcomes must actually occur for this test to mean anything.
        assert!(
            accepted > 0 && rejected > 0,
            "accepted {accepted}, rejected {rejected}"
        );
    }
}
