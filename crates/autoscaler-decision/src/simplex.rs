//! A dense two-phase simplex for the small linear programs the planner solves (tens of rows, a few
//! hundred columns): which family of nodes should carry which share of each pod shape. Public for the
//! benchmark lab's lower bound (`decision-lab`), whose column generation keeps a [`Tableau`] and adds and
//! drops columns between solves.
//!
//! Dantzig's rule (most negative reduced cost) converges fast on these programs; they are very
//! degenerate (capacity rows have a zero right-hand side), so after a budget of pivots the rule turns to
//! Bland's, which cannot cycle. A hard pivot budget bounds the work: past it the caller gets `None` and
//! plans without the program's advice.

/// Entries smaller than this are zero.
const EPS: f64 = 1e-9;

/// The dense tableau: `rows` constraint rows then the objective row (reduced costs, and minus the
/// objective's value as its last entry), each `cols + 1` wide (the last entry is the right-hand side),
/// and the basic column of each constraint row. Column generation keeps one and adds or drops columns.
pub struct Tableau {
    t: Vec<Vec<f64>>,
    basis: Vec<usize>,
    cols: usize,
}

impl Tableau {
    /// A tableau already in canonical form for `basis`: `t` holds the constraint rows then the objective
    /// row, each with its right-hand side last.
    pub fn new(t: Vec<Vec<f64>>, basis: Vec<usize>) -> Self {
        let cols = t.first().map_or(0, |r| r.len().saturating_sub(1));
        Tableau { t, basis, cols }
    }

    /// The reduced cost of every column.
    pub fn objective(&self) -> &[f64] {
        &self.t[self.t.len() - 1][..self.cols]
    }

    /// The entry of constraint row `row` in column `col`.
    pub fn entry(&self, row: usize, col: usize) -> f64 {
        self.t[row][col]
    }

    /// The objective's value at the current basis.
    pub fn value(&self) -> f64 {
        -self.t[self.t.len() - 1][self.cols]
    }

    /// Adds a column given in the tableau's terms: one entry per constraint row, then its reduced cost.
    pub fn push_column(&mut self, column: &[f64]) {
        for (line, v) in self.t.iter_mut().zip(column) {
            line.insert(self.cols, *v);
        }
        self.cols += 1;
    }

    /// Drops the non-basic columns `drop` marks.
    pub fn drop_columns(&mut self, drop: &[bool]) {
        for &j in &self.basis {
            debug_assert!(!drop[j], "a basic column cannot be dropped");
        }
        for line in &mut self.t {
            let mut j = 0;
            line.retain(|_| {
                j += 1;
                !drop.get(j - 1).copied().unwrap_or(false)
            });
        }
        let mut new_index = Vec::with_capacity(drop.len());
        let mut next = 0;
        for d in drop {
            new_index.push(next);
            next += usize::from(!d);
        }
        for j in &mut self.basis {
            *j = new_index[*j];
        }
        self.cols = next;
    }

    /// Which columns are basic.
    pub fn basic(&self) -> Vec<bool> {
        let mut basic = vec![false; self.cols];
        for &j in &self.basis {
            basic[j] = true;
        }
        basic
    }

    fn pivot(&mut self, row: usize, col: usize) {
        let p = self.t[row][col];
        for v in self.t[row].iter_mut() {
            *v /= p;
        }
        let pivot_row = self.t[row].clone();
        for (r, line) in self.t.iter_mut().enumerate() {
            let f = line[col];
            if r != row && f.abs() > 0.0 {
                for (v, p) in line.iter_mut().zip(&pivot_row) {
                    *v -= f * p;
                }
            }
        }
        self.basis[row] = col;
    }

    /// Pivots until no column in `allowed` improves the objective. False past the budget or on an
    /// unbounded column.
    pub fn optimize(&mut self, allowed: std::ops::Range<usize>, budget: &mut usize) -> bool {
        let rows = self.basis.len();
        let mut dantzig = *budget / 2;
        loop {
            let obj = self.objective();
            let mut candidates = allowed.clone();
            let entering = if dantzig > 0 {
                candidates.filter(|&j| obj[j] < -EPS).min_by(|&a, &b| obj[a].total_cmp(&obj[b]))
            } else {
                candidates.find(|&j| obj[j] < -EPS)
            };
            let Some(col) = entering else { return true };
            let mut leaving: Option<(f64, usize)> = None;
            for r in 0..rows {
                let a = self.t[r][col];
                if a > EPS {
                    let ratio = self.t[r][self.cols] / a;
                    let better = leaving.is_none_or(|(best, lr)| {
                        ratio < best - EPS || (ratio <= best + EPS && self.basis[r] < self.basis[lr])
                    });
                    if better {
                        leaving = Some((ratio, r));
                    }
                }
            }
            let Some((_, row)) = leaving else { return false };
            if *budget == 0 {
                return false;
            }
            *budget -= 1;
            dantzig = dantzig.saturating_sub(1);
            self.pivot(row, col);
        }
    }
}

/// Minimizes `c · x` subject to `a x = b` and `x ≥ 0`, with `b ≥ 0` (negate a row first otherwise).
/// `None` when the program is infeasible, unbounded or not solved within the pivot budget.
pub fn minimize(a: &[Vec<f64>], b: &[f64], c: &[f64]) -> Option<Vec<f64>> {
    solve(a, b, c).map(|s| s.x)
}

/// An optimum and its dual.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Solution {
    /// The primal optimum, one value per column.
    pub x: Vec<f64>,
    /// The dual prices, one per row.
    pub duals: Vec<f64>,
}

/// [`minimize`] with the optimum's dual: a price per row `y` with `y · a_j ≤ c_j` for every column, so
/// that `y · b` bounds the objective from below (equal at the optimum up to rounding).
pub fn solve(a: &[Vec<f64>], b: &[f64], c: &[f64]) -> Option<Solution> {
    let (rows, n) = (a.len(), c.len());
    if b.len() != rows || a.iter().any(|r| r.len() != n) || b.iter().any(|v| *v < 0.0 || !v.is_finite()) {
        return None;
    }
    // Columns: the program's, then one artificial per row; then the right-hand side.
    let cols = n + rows;
    let mut t = Vec::with_capacity(rows + 1);
    for (r, (line, rhs)) in a.iter().zip(b).enumerate() {
        let mut row = vec![0.0; cols + 1];
        row[..n].copy_from_slice(line);
        row[n + r] = 1.0;
        row[cols] = *rhs;
        t.push(row);
    }
    // Phase one minimizes the artificials' sum: its reduced costs are minus the column sums.
    let mut phase_one = vec![0.0; cols + 1];
    for line in &t {
        for (j, v) in line.iter().enumerate() {
            if j < n || j == cols {
                phase_one[j] -= v;
            }
        }
    }
    t.push(phase_one);
    let mut tab = Tableau::new(t, (n..cols).collect());
    // Programs this size take a few pivots per row; far past that something is wrong.
    let mut budget = 20 * rows + 1000;
    if !tab.optimize(0..cols, &mut budget) {
        return None;
    }
    let scale = 1.0 + b.iter().fold(0.0f64, |m, v| m.max(*v));
    if tab.value() > 1e-7 * scale {
        return None;
    }
    // Artificials still basic (at zero) leave for any program column with a nonzero entry; a row with
    // none is redundant and keeps its artificial at zero.
    for r in 0..rows {
        if tab.basis[r] >= n
            && let Some(col) = (0..n).find(|&j| tab.t[r][j].abs() > EPS)
        {
            tab.pivot(r, col);
        }
    }
    // Phase two: reduced costs of the real objective under the current basis.
    let mut obj = vec![0.0; cols + 1];
    obj[..n].copy_from_slice(c);
    for r in 0..rows {
        let j = tab.basis[r];
        let cost = if j < n { c[j] } else { 0.0 };
        if cost != 0.0 {
            for (o, v) in obj.iter_mut().zip(&tab.t[r]) {
                *o -= cost * v;
            }
        }
    }
    tab.t[rows] = obj;
    // Artificials may not re-enter.
    if !tab.optimize(0..n, &mut budget) {
        return None;
    }
    let mut x = vec![0.0; n];
    for (r, &j) in tab.basis.iter().enumerate() {
        if j < n {
            x[j] = tab.t[r][cols].max(0.0);
        }
    }
    // Each artificial column started as a unit column of cost zero, so its reduced cost is minus its
    // row's price.
    let y = (0..rows).map(|r| -tab.objective()[n + r]).collect();
    Some(Solution { x, duals: y })
}

#[cfg(test)]
mod tests {
    use super::{Solution, minimize, solve};

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
    }

    #[test]
    fn solves_a_textbook_program() {
        // min -3x - 5y  s.t. x + s1 = 4, 2y + s2 = 12, 3x + 2y + s3 = 18: optimum x = 2, y = 6.
        let a = vec![vec![1.0, 0.0, 1.0, 0.0, 0.0], vec![0.0, 2.0, 0.0, 1.0, 0.0], vec![3.0, 2.0, 0.0, 0.0, 1.0]];
        let x = minimize(&a, &[4.0, 12.0, 18.0], &[-3.0, -5.0, 0.0, 0.0, 0.0]);
        assert!(x.as_deref().is_some_and(|x| close(&x[..2], &[2.0, 6.0])), "{x:?}");
    }

    #[test]
    fn equality_rows_need_phase_one() {
        // min x + 2y s.t. x + y = 3, x - y + s = 1 (x ≤ y + 1): optimum x = 2, y = 1.
        let a = vec![vec![1.0, 1.0, 0.0], vec![1.0, -1.0, 1.0]];
        let x = minimize(&a, &[3.0, 1.0], &[1.0, 2.0, 0.0]);
        assert!(x.as_deref().is_some_and(|x| close(&x[..2], &[2.0, 1.0])), "{x:?}");
    }

    #[test]
    fn reports_infeasible_and_unbounded_programs() {
        // x + y = 1 and x + y = 2 cannot both hold.
        assert_eq!(minimize(&[vec![1.0, 1.0], vec![1.0, 1.0]], &[1.0, 2.0], &[1.0, 1.0]), None);
        // min -x s.t. x - y = 0: x grows without end.
        assert_eq!(minimize(&[vec![1.0, -1.0]], &[0.0], &[-1.0, 0.0]), None);
    }

    #[test]
    fn gives_the_dual_of_the_optimum() {
        // The textbook program again: its dual prices are 0, 3/2 and 1 (times -1 for the minimization).
        let a = vec![vec![1.0, 0.0, 1.0, 0.0, 0.0], vec![0.0, 2.0, 0.0, 1.0, 0.0], vec![3.0, 2.0, 0.0, 0.0, 1.0]];
        let Solution { x, duals: y } = solve(&a, &[4.0, 12.0, 18.0], &[-3.0, -5.0, 0.0, 0.0, 0.0]).unwrap_or_default();
        assert!(close(&x[..2], &[2.0, 6.0]) && close(&y, &[0.0, -1.5, -1.0]), "{x:?} {y:?}");
        // Strong duality: y · b equals the optimum, -36.
        assert!((y[0] * 4.0 + y[1] * 12.0 + y[2] * 18.0 + 36.0).abs() < 1e-9);
    }

    #[test]
    fn redundant_rows_are_harmless() {
        // The same row twice: min x + y s.t. x + 2y = 2 (twice): optimum y = 1.
        let a = vec![vec![1.0, 2.0], vec![1.0, 2.0]];
        let x = minimize(&a, &[2.0, 2.0], &[1.0, 1.0]);
        assert!(x.as_deref().is_some_and(|x| close(x, &[0.0, 1.0])), "{x:?}");
    }
}
