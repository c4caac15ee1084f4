-- Outcomes arrive days or months after a prediction and name it by its request id: find the
-- prediction's record without scanning the log.
CREATE INDEX audit_log_request_id ON audit_log (request_id);
