import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A promotion's uses are not edits of it (issue 23): the version trigger of `promotions` runs only
 * for an UPDATE that leaves `times_used` as it is. A checkout taking a use, or a cancel or an expiry
 * giving one back, writes only `times_used`, so the promotion's version, `updated_at` and ETag stay
 * as they were and an admin's PATCH with an If-Match read before stays fresh; an admin's write (which
 * never names `times_used`) moves them as before, also when it changes nothing (a PATCH of `{}`).
 * `timesUsed` in the representation is read from the column, exact as ever.
 */
export class PromotionUsesApart1763791400000 implements MigrationInterface {
  name = 'PromotionUsesApart1763791400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER promotions_touch_version ON promotions`);
    await q.query(
      `CREATE TRIGGER promotions_touch_version BEFORE UPDATE ON promotions
         FOR EACH ROW WHEN (OLD.times_used = NEW.times_used) EXECUTE FUNCTION touch_version()`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER promotions_touch_version ON promotions`);
    await q.query(
      `CREATE TRIGGER promotions_touch_version BEFORE UPDATE ON promotions
         FOR EACH ROW EXECUTE FUNCTION touch_version()`,
    );
  }
}
