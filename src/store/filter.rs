//! A `SELECT … WHERE` with optional conditions and numbered `$N` parameters: the
//! same text on SQLite and PostgreSQL.

use sqlx::AnyPool;
use sqlx::any::AnyRow;

/// A bind parameter.
enum Param {
    Text(String),
    Int(i64),
}

/// A query under construction: conditions are added only for the filters set.
pub(super) struct Filter {
    sql: String,
    params: Vec<Param>,
}

impl Filter {
    /// `select` must end in a `WHERE` clause conditions can be `AND`ed to.
    pub(super) fn new(select: String) -> Filter {
        Filter {
            sql: select,
            params: Vec::new(),
        }
    }

    fn push(&mut self, cond: &str, p: Param) {
        self.params.push(p);
        self.sql += &format!(" AND {cond} ${}", self.params.len());
    }

    /// `AND <cond> $N` when `v` is set (`cond` ends in its operator: `line =`).
    pub(super) fn text(&mut self, cond: &str, v: &Option<String>) {
        if let Some(v) = v {
            self.push(cond, Param::Text(v.clone()));
        }
    }

    pub(super) fn int(&mut self, cond: &str, v: Option<i64>) {
        if let Some(v) = v {
            self.push(cond, Param::Int(v));
        }
    }

    /// `AND (ended_at_ms, id)` after the given pair in the order asked (keyset
    /// paging over `ORDER BY ended_at_ms, id`).
    pub(super) fn after(&mut self, ended_at_ms: i64, id: &str, ascending: bool) {
        let op = if ascending { ">" } else { "<" };
        self.params.push(Param::Int(ended_at_ms));
        let t = self.params.len();
        self.params.push(Param::Int(ended_at_ms));
        self.params.push(Param::Text(id.to_string()));
        // The plain bound first lets the index seek to the page; the OR alone
        // would scan from the first row every page (quadratic over an export).
        let bound = if ascending { ">=" } else { "<=" };
        self.sql += &format!(
            " AND ended_at_ms {bound} ${t} AND (ended_at_ms {op} ${t} OR (ended_at_ms = ${} AND id {op} ${}))",
            t + 1,
            t + 2
        );
    }

    /// Orders, limits and runs the query.
    pub(super) async fn fetch(
        mut self,
        pool: &AnyPool,
        order_by: &str,
        limit: i64,
    ) -> Result<Vec<AnyRow>, sqlx::Error> {
        self.params.push(Param::Int(limit.max(0)));
        self.sql += &format!(" ORDER BY {order_by} LIMIT ${}", self.params.len());
        let mut q = sqlx::query(&self.sql);
        for p in self.params {
            q = match p {
                Param::Text(v) => q.bind(v),
                Param::Int(v) => q.bind(v),
            };
        }
        q.fetch_all(pool).await
    }
}
