from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('milestones', '0007_alerts')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SharedAnswer',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(unique=True, max_length=64)),
                ('shared_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'shared_answer', 'app': 'milestones', 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
