-- A token remembers what the script it was minted in promised: which profile, and whether the install wipes the
-- disk (a reprovision). The config served for it is then the one that script meant, even if the machine's
-- assignment or reprovision flag changes while Talos is still retrying its download.
ALTER TABLE boot_tokens ADD COLUMN profile TEXT NOT NULL DEFAULT '';
ALTER TABLE boot_tokens ADD COLUMN wipe INTEGER NOT NULL DEFAULT 0;
