//! A product-holding data set from the UCI Bank Marketing file (`bank_marketing.csv`).
//!
//! Why: the recommendation models are for financial products, and MovieLens only tests ranking
//! mechanics. The bank file gives real customers with real holdings: a housing loan (`housing`),
//! a personal loan (`loan`) and a term deposit taken after the campaign (`y`). `default` (credit
//! in default) is a status, not a product, so it is not an item. Age band, job, marital status
//! and education become user attributes for segment popularity and the cold-start hybrid.
//!
//! The file has no quoted fields, so a plain comma split suffices; a quote is refused rather
//! than misread.

use crate::{
    AttributeRow, AttributeTable, InteractionOptions, InteractionRecord, Interactions, RecoError,
    Weighting,
};

/// One customer row, with only the columns the holding data set needs.
#[derive(Clone, Debug, PartialEq)]
pub struct BankCustomer {
    pub id: String,
    pub age: u32,
    pub job: String,
    pub marital: String,
    pub education: String,
    pub housing_loan: bool,
    pub personal_loan: bool,
    pub term_deposit: bool,
}

/// Customers × products, with user and item attributes. Customers with no product are kept in
/// `prospects` (they cannot be interaction rows, but are exactly the new users to recommend to).
#[derive(Clone, Debug)]
pub struct BankProducts {
    pub interactions: Interactions,
    pub users: AttributeTable,
    pub items: AttributeTable,
    pub prospects: Vec<AttributeRow>,
}

const COLUMNS: [&str; 7] = ["age", "job", "marital", "education", "housing", "loan", "y"];

fn bad(line: usize, field: &str, reason: String) -> RecoError {
    RecoError::InvalidAttribute {
        table: "bank_csv",
        index: line,
        field: field.to_string(),
        reason,
    }
}

/// Parses the CSV text (header line first); customer ids are `c<data row number>` from 1.
/// Errors name the 1-based line and the column.
pub fn parse_bank_csv(text: &str) -> Result<Vec<BankCustomer>, RecoError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines
        .next()
        .ok_or_else(|| bad(1, "header", "the file is empty".into()))?;
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let mut pos = [0usize; 7];
    for (p, want) in pos.iter_mut().zip(COLUMNS) {
        *p = names
            .iter()
            .position(|n| *n == want)
            .ok_or_else(|| bad(1, want, "column missing from the header".into()))?;
    }
    let mut out = Vec::new();
    for (n, (i, line)) in lines.enumerate() {
        let line_no = i + 1;
        if line.contains('"') {
            return Err(bad(
                line_no,
                "line",
                "quoted fields are not supported".into(),
            ));
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() != names.len() {
            return Err(bad(
                line_no,
                "line",
                format!("{} fields, the header has {}", f.len(), names.len()),
            ));
        }
        let yes_no = |col: usize| match f[pos[col]] {
            "yes" => Ok(true),
            "no" => Ok(false),
            other => Err(bad(
                line_no,
                COLUMNS[col],
                format!("expected yes or no, got `{other}`"),
            )),
        };
        let age = f[pos[0]]
            .parse::<u32>()
            .map_err(|_| bad(line_no, "age", format!("`{}` is not an age", f[pos[0]])))?;
        let text = |col: usize| -> Result<String, RecoError> {
            let v = f[pos[col]];
            if v.is_empty() {
                Err(bad(line_no, COLUMNS[col], "must not be empty".into()))
            } else {
                Ok(v.to_string())
            }
        };
        out.push(BankCustomer {
            id: format!("c{}", n + 1),
            age,
            job: text(1)?,
            marital: text(2)?,
            education: text(3)?,
            housing_loan: yes_no(4)?,
            personal_loan: yes_no(5)?,
            term_deposit: yes_no(6)?,
        });
    }
    Ok(out)
}

/// A ten-year age band, e.g. `30-39`.
pub fn age_band(age: u32) -> String {
    let lo = age / 10 * 10;
    format!("{lo}-{}", lo + 9)
}

/// The three products with their categories and descriptions.
pub fn bank_product_table() -> AttributeTable {
    let rows = vec![
        AttributeRow::new("housing_loan")
            .with("category", "loan")
            .with("secured", "yes")
            .text("mortgage secured on a home"),
        AttributeRow::new("personal_loan")
            .with("category", "loan")
            .with("secured", "no")
            .text("unsecured personal credit"),
        AttributeRow::new("term_deposit")
            .with("category", "deposit")
            .with("secured", "no")
            .text("fixed term savings deposit"),
    ];
    AttributeTable::items(rows)
        .unwrap_or_else(|_| unreachable!("the product table is a valid constant"))
}

/// Builds the holding data set: one binary interaction per product held.
pub fn bank_products(customers: &[BankCustomer]) -> Result<BankProducts, RecoError> {
    let mut records = Vec::new();
    let mut users = Vec::new();
    let mut prospects = Vec::new();
    for c in customers {
        let attrs = AttributeRow::new(c.id.clone())
            .with("age", age_band(c.age))
            .with("job", c.job.clone())
            .with("marital", c.marital.clone())
            .with("education", c.education.clone());
        let held: Vec<&str> = [
            (c.housing_loan, "housing_loan"),
            (c.personal_loan, "personal_loan"),
            (c.term_deposit, "term_deposit"),
        ]
        .iter()
        .filter(|x| x.0)
        .map(|x| x.1)
        .collect();
        if held.is_empty() {
            prospects.push(attrs);
            continue;
        }
        records.extend(
            held.iter()
                .map(|p| InteractionRecord::new(c.id.clone(), *p)),
        );
        users.push(attrs);
    }
    let interactions = Interactions::build(
        &records,
        &InteractionOptions {
            weighting: Weighting::Binary,
            rating_threshold: None,
        },
    )?;
    Ok(BankProducts {
        interactions,
        users: AttributeTable::users(users)?,
        items: bank_product_table(),
        prospects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "age,job,marital,education,default,balance,housing,loan,contact,day,month,duration,campaign,pdays,previous,poutcome,y\n\
30,unemployed,married,primary,no,1787,no,no,cellular,19,oct,79,1,-1,0,unknown,no\n\
33,services,married,secondary,no,4789,yes,yes,cellular,11,may,220,1,339,4,failure,no\n\
59,blue-collar,married,secondary,no,0,yes,no,unknown,5,may,226,1,-1,0,unknown,yes\n";

    #[test]
    fn builds_holdings_and_prospects() {
        let c = parse_bank_csv(CSV).unwrap();
        assert_eq!(c.len(), 3);
        let b = bank_products(&c).unwrap();
        assert_eq!(b.interactions.users().len(), 2);
        assert_eq!(b.interactions.nnz(), 4);
        assert_eq!(b.prospects.len(), 1);
        assert_eq!(b.users.value("c3", "age"), Some("50-59"));
        b.users.check_against(b.interactions.users()).unwrap();
        b.items.check_against(b.interactions.items()).unwrap();
    }

    #[test]
    fn bad_rows_name_line_and_column() {
        let e = parse_bank_csv(&CSV.replace("yes,yes", "yes,maybe")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "bank_csv[3].loan: expected yes or no, got `maybe`"
        );
        let e = parse_bank_csv("age,job\n").unwrap_err();
        assert!(e.to_string().contains("marital"), "{e}");
    }
}
