from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [('milestones', '0012_signoff_via')]

    initial = False

    operations = [
        # Claims made before leases have none: a claim still open from then is taken as expired.
        ops.AddField(
            model_name='DigestRun',
            name='lease_until',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
