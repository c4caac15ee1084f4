-- Attributes given with an outcome (for example a protected attribute that is not a model
-- feature), as a JSON object of strings: live fairness groups outcomes by them. NULL when none.
ALTER TABLE outcomes ADD COLUMN attributes TEXT;
