-- Which script composed an automatic text and why (`after_hours_script: the business was closed when they
-- called`), shown in the conversation, the simulator and the log.
ALTER TABLE messages ADD COLUMN script TEXT;
