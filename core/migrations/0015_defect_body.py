from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('milestones', '0014_triage')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Defect',
            name='body',
            field=fields.TextField(null=True, unique=False),
        ),
    ]
